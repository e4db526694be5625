import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';
import { dataConverterFor } from '../common/codec';
import type { Config } from '../common/config';
import type { Logger } from '../common/logger';
import { onShutdown } from '../common/shutdown';

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
