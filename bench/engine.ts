import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { createPaymentActivities, createPurchaseActivities } from '../activities';
import { dataConverterFor } from '../common/codec';
import type { Config } from '../common/config';
import { initialSearchAttributes } from '../workflows/contract';
import type { PurchaseInput, PurchaseResult } from '../workflows/contract';
import type { Deadline, Summary, Throughput } from './support';
import { runPool, summarize, throughput } from './support';
import { noopWorkflow, purchase } from './workflows';

/*
 * The engine ceiling: the real purchase workflow on two task queues, like production,
 * but every activity body returns at once. Typing them as the real activity objects
 * keeps the names and the count identical: a missing or extra activity fails to compile.
 */
const noopPurchaseActivities: ReturnType<typeof createPurchaseActivities> = {
  admit: () => Promise.resolve({ outcome: 'admitted' }),
  settle: () => Promise.resolve(),
  persistPurchase: () => Promise.resolve(),
  recordStatus: () => Promise.resolve(),
  cancelRequester: () => Promise.resolve(undefined),
  claimFingerprint: () => Promise.resolve(undefined),
  reserveStock: () => Promise.resolve(true),
  releaseStock: () => Promise.resolve(),
  publishEvent: () => Promise.resolve(),
  publishDeadLetter: () => Promise.resolve(),
};

const noopPaymentActivities: ReturnType<typeof createPaymentActivities> = {
  charge: () => Promise.resolve({ chargeId: 'noop', attempt: 1 }),
  findCharge: () => Promise.resolve(undefined),
};

export interface NoopWorkers {
  purchasesQueue: string;
  paymentsQueue: string;
  close(): Promise<void>;
}

/** Both workers in this process, on task queues of their own so the stack's workers never see them. */
export async function startNoopWorkers(config: Config, runId: string): Promise<NoopWorkers> {
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const purchasesQueue = `bench-purchases-${runId}`;
  const paymentsQueue = `bench-payments-${runId}`;
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const workers: Worker[] = [];
  const runs: Promise<void>[] = [];
  try {
    workers.push(
      await Worker.create({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: purchasesQueue,
        dataConverter: dataConverterFor(config),
        workflowsPath: require.resolve('./workflows'),
        activities: noopPurchaseActivities,
      }),
      await Worker.create({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: paymentsQueue,
        dataConverter: dataConverterFor(config),
        activities: noopPaymentActivities,
      }),
    );
  } catch (err) {
    await connection.close();
    throw err;
  }
  for (const worker of workers) runs.push(worker.run());
  return {
    purchasesQueue,
    paymentsQueue,
    async close() {
      for (const worker of workers) {
        if (worker.getState() === 'RUNNING') worker.shutdown();
      }
      await Promise.allSettled(runs);
      await connection.close();
    },
  };
}

export interface EngineRate extends Throughput {
  results: Record<string, number>;
  /** How long each client start call took, in milliseconds. */
  start: Summary;
}

/**
 * Starts `count` workflows with `concurrency` starts in flight, as the api would, then
 * times first start to last close. The close time comes from the server's own record, so
 * how quickly this process notices does not count.
 */
async function measure(
  client: Client,
  count: number,
  concurrency: number,
  deadline: Deadline,
  phase: string,
  start: (i: number) => Promise<WorkflowHandle>,
): Promise<EngineRate> {
  const handles: WorkflowHandle[] = [];
  const startLatencies: number[] = [];
  const t0 = Date.now();
  try {
    await runPool(
      count,
      concurrency,
      async (i) => {
        const sent = performance.now();
        handles[i] = await start(i);
        startLatencies.push(performance.now() - sent);
      },
      deadline,
      `${phase}: starting`,
    );
    const results: Record<string, number> = {};
    await runPool(
      count,
      concurrency,
      async (i) => {
        const result = (await handles[i]!.result()) as PurchaseResult | undefined;
        const status = result?.status ?? 'completed';
        results[status] = (results[status] ?? 0) + 1;
      },
      deadline,
      `${phase}: waiting for completions`,
    );
    const closes: number[] = [];
    await runPool(
      count,
      concurrency,
      async (i) => {
        const { closeTime } = await handles[i]!.describe();
        closes.push(closeTime?.getTime() ?? Date.now());
      },
      deadline,
      `${phase}: reading close times`,
    );
    return { ...throughput(t0, closes), results, start: summarize(startLatencies) };
  } catch (err) {
    // Cut short: end what this run started, since its workers are about to go away.
    await terminateAll(handles.filter(Boolean), phase);
    throw err;
  }
}

/** Best effort and bounded; a workflow that already closed just refuses. */
async function terminateAll(handles: WorkflowHandle[], phase: string): Promise<void> {
  const until = Date.now() + 30_000;
  for (let i = 0; i < handles.length && Date.now() < until; i += 50) {
    await Promise.allSettled(
      handles.slice(i, i + 50).map((h) => h.terminate(`benchmark stopped during ${phase}`)),
    );
  }
}

export interface EngineOptions {
  client: Client;
  config: Config;
  workers: NoopWorkers;
  runId: string;
  count: number;
  concurrency: number;
  deadline: Deadline;
}

/** `label` keeps the workflow ids of a warm-up apart from those of the measured run. */
export function measureBareWorkflow(
  o: EngineOptions,
  label: string,
  count = o.count,
  concurrency = o.concurrency,
): Promise<EngineRate> {
  return measure(o.client, count, concurrency, o.deadline, `bare no-op workflows (${label})`, (i) =>
    o.client.workflow.start(noopWorkflow, {
      taskQueue: o.workers.purchasesQueue,
      workflowId: `bench:${o.runId}:bare-${label}:${i}`,
    }),
  );
}

/** The purchase workflow, started with the same options and search attributes as the api. */
export function measurePurchaseShape(
  o: EngineOptions,
  label: string,
  count = o.count,
): Promise<EngineRate> {
  const { config } = o;
  const phase = `no-op purchase workflows (${label})`;
  return measure(o.client, count, o.concurrency, o.deadline, phase, (i) => {
    const input: PurchaseInput = {
      purchaseId: `pur_${randomUUID().replace(/-/g, '')}`,
      merchantId: 'm_bench',
      customerId: `cus_bench_${i}`,
      idempotencyKey: `${o.runId}-${label}-${i}`,
      amountMinor: 1990,
      currency: 'BRL',
      items: [{ productId: 'bench', quantity: 1, unitPriceMinor: 1990 }],
      token: 'tok_visa',
      createdAt: new Date().toISOString(),
      dedupWindowMs: config.DEDUP_WINDOW_SECONDS * 1000,
      paymentsTaskQueue: o.workers.paymentsQueue,
      retry: {
        initialIntervalMs: config.PAYMENT_RETRY_INITIAL_MS,
        backoffCoefficient: config.PAYMENT_RETRY_BACKOFF,
        maximumIntervalMs: config.PAYMENT_RETRY_MAX_INTERVAL_MS,
        maximumAttempts: config.PAYMENT_RETRY_MAX_ATTEMPTS,
        providerTimeoutMs: config.PROVIDER_TIMEOUT_MS,
      },
    };
    return o.client.workflow.start(purchase, {
      taskQueue: o.workers.purchasesQueue,
      workflowId: `bench:${o.runId}:shape-${label}:${i}`,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: initialSearchAttributes(input),
    });
  });
}
