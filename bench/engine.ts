import type { Client, WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { dataConverterFor } from '../common/codec';
import type { Config } from '../common/config';
import type { Deadline, Throughput } from './support';
import { runPool, throughput } from './support';
import { noopWorkflow } from './workflows';

/*
 * The engine's own rate: a workflow with no activities, started as the api starts
 * purchases, on a worker in this process with a task queue of its own.
 */

export interface BareEngine {
  close(): Promise<void>;
  /** `count` workflows with `concurrency` starts in flight, first start to last close. */
  measure(label: string, count: number, concurrency: number): Promise<Throughput>;
}

export async function startBareEngine(
  client: Client,
  config: Config,
  runId: string,
  deadline: Deadline,
): Promise<BareEngine> {
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const taskQueue = `bench-bare-${runId}`;
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue,
    dataConverter: dataConverterFor(config),
    workflowsPath: require.resolve('./workflows'),
  }).catch(async (err: unknown) => {
    await connection.close();
    throw err;
  });
  const running = worker.run();
  return {
    async close() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    },
    async measure(label, count, concurrency) {
      const phase = `bare workflows (${label})`;
      const handles: WorkflowHandle[] = [];
      const t0 = Date.now();
      try {
        const pool = (fn: (i: number) => Promise<void>, what: string) =>
          runPool(count, concurrency, fn, deadline, `${phase}: ${what}`);
        await pool(async (i) => {
          handles[i] = await client.workflow.start(noopWorkflow, {
            taskQueue,
            workflowId: `bench:${runId}:bare-${label}:${i}`,
          });
        }, 'starting');
        await pool((i) => handles[i]!.result(), 'waiting for completions');
        // The close time is the server's own record, so how soon this process notices
        // does not count.
        const closes: number[] = [];
        await pool(async (i) => {
          const { closeTime } = await handles[i]!.describe();
          closes.push(closeTime?.getTime() ?? Date.now());
        }, 'reading close times');
        return throughput(t0, closes);
      } catch (err) {
        // Cut short: end what was started, since the worker is about to go away.
        await Promise.allSettled(handles.map((h) => h.terminate(`benchmark stopped: ${phase}`)));
        throw err;
      }
    },
  };
}
