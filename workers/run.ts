import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';
import { dataConverterFor } from '../common/codec';
import type { Config } from '../common/config';
import type { Logger } from '../common/logger';
import { onShutdown } from '../common/shutdown';

/** The WORKER_* settings that are set; an unset one leaves the SDK's default alone. */
export function tuning(config: Config): Partial<WorkerOptions> {
  const options: Partial<WorkerOptions> = { reuseV8Context: config.WORKER_REUSE_V8_CONTEXT };
  if (config.WORKER_WORKFLOW_TASK_SLOTS !== undefined)
    options.maxConcurrentWorkflowTaskExecutions = config.WORKER_WORKFLOW_TASK_SLOTS;
  if (config.WORKER_CACHED_WORKFLOWS !== undefined)
    options.maxCachedWorkflows = config.WORKER_CACHED_WORKFLOWS;
  if (config.WORKER_WORKFLOW_POLLERS !== undefined)
    options.maxConcurrentWorkflowTaskPolls = config.WORKER_WORKFLOW_POLLERS;
  return options;
}

/**
 * Starts a worker and drains it on SIGTERM/SIGINT: it stops polling, lets running
 * tasks finish, then `close` releases the process's own clients.
 */
export async function runWorker(
  config: Config,
  logger: Logger,
  options: Omit<WorkerOptions, 'connection' | 'namespace' | 'dataConverter'>,
  close: () => Promise<void>,
): Promise<void> {
  Runtime.install({ shutdownSignals: [] });
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    ...options,
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: dataConverterFor(config),
    shutdownGraceTime: Math.max(config.SHUTDOWN_TIMEOUT_MS - 2000, 1000),
    ...tuning(config),
  });
  onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, async () => {
    worker.shutdown();
    await done;
    await close();
    await connection.close();
  });
  const done = worker.run();
  logger.info({ taskQueue: options.taskQueue }, 'worker started');
  await done;
}
