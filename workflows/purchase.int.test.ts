import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { createPaymentActivities, createPurchaseActivities } from '../activities';
import type { Settlement, StatusChange } from '../activities/purchases';
import { testConfig } from '../test/config';
import { chargeKeyFor, workflowIdFor } from './contract';
import type { PurchaseInput } from './contract';
import { purchase } from './purchase';

/*
 * Branches of the purchase workflow with fake activities, on the stack's Temporal server
 * (namespace gateway-test) and a task queue of this file's own.
 */
type PurchaseActivities = ReturnType<typeof createPurchaseActivities>;
type PaymentActivities = ReturnType<typeof createPaymentActivities>;

interface Fakes {
  calls: string[];
  statuses: StatusChange[];
  settlements: Settlement[];
  charges: string[];
  /** Resolves the fake admit, which waits until the test lets it go. */
  releaseAdmit: () => void;
}

function fakes(charge: PaymentActivities['charge']): {
  fakes: Fakes;
  purchases: PurchaseActivities;
  payments: PaymentActivities;
} {
  let releaseAdmit = (): void => undefined;
  const admitGate = new Promise<void>((resolve) => (releaseAdmit = resolve));
  const f: Fakes = {
    calls: [],
    statuses: [],
    settlements: [],
    charges: [],
    releaseAdmit: () => releaseAdmit(),
  };
  const track =
    <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      f.calls.push(name);
      return fn(...args);
    };
  const unused = () => Promise.reject(new Error('a shape-2 step in a shape-3 run'));
  return {
    fakes: f,
    purchases: {
      admit: track('admit', async () => {
        await admitGate;
        f.statuses.push({ purchaseId: '', to: 'PROCESSING' });
        return { outcome: 'admitted' } as const;
      }),
      settle: track('settle', (settlement: Settlement) => {
        f.settlements.push(settlement);
        f.statuses.push(settlement.change);
        return Promise.resolve();
      }),
      recordStatus: track('recordStatus', (change: StatusChange) => {
        f.statuses.push(change);
        return Promise.resolve();
      }),
      cancelRequester: track('cancelRequester', () => Promise.resolve('ops@example')),
      persistPurchase: unused,
      claimFingerprint: unused,
      reserveStock: unused,
      releaseStock: unused,
      publishEvent: unused,
      publishDeadLetter: unused,
    },
    payments: {
      charge: track('charge', (request) => {
        f.charges.push(request.idempotencyKey);
        return charge(request);
      }),
      findCharge: track('findCharge', () => Promise.resolve(undefined)),
      // Manual capture and refunds are covered on the real stack (test/purchases/lifecycle).
      authorize: unused,
      capture: unused,
      voidAuthorization: unused,
      refund: unused,
      findMovement: unused,
    },
  };
}

const queue = `wf-test-${randomUUID().slice(0, 8)}`;
let connection: Connection;
let client: Client;
let nativeConnection: NativeConnection;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  nativeConnection = await NativeConnection.connect({ address: testConfig.TEMPORAL_ADDRESS });
  connection = await Connection.connect({ address: testConfig.TEMPORAL_ADDRESS });
  client = new Client({ connection, namespace: testConfig.TEMPORAL_NAMESPACE });
});
afterAll(async () => {
  await connection.close();
  await nativeConnection.close();
});

function input(): PurchaseInput {
  const purchaseId = `pur_${randomUUID().replace(/-/g, '')}`;
  return {
    purchaseId,
    merchantId: 'm_test',
    customerId: 'cus_1',
    idempotencyKey: randomUUID(),
    amountMinor: 5000,
    currency: 'BRL',
    items: [{ productId: 'p1', quantity: 2, unitPriceMinor: 2500 }],
    token: 'tok_visa',
    createdAt: new Date().toISOString(),
    dedupWindowMs: 600_000,
    paymentsTaskQueue: `${queue}-payments`,
    retry: {
      initialIntervalMs: 100,
      backoffCoefficient: 1,
      maximumIntervalMs: 100,
      maximumAttempts: 2,
      providerTimeoutMs: 1000,
    },
  };
}

/** Runs `body` with both workers of the fakes up. */
async function withWorkers<T>(
  activities: ReturnType<typeof fakes>,
  body: () => Promise<T>,
): Promise<T> {
  const namespace = testConfig.TEMPORAL_NAMESPACE;
  const purchasesWorker = await Worker.create({
    connection: nativeConnection,
    namespace,
    taskQueue: queue,
    workflowsPath: require.resolve('./index'),
    activities: activities.purchases,
  });
  const paymentsWorker = await Worker.create({
    connection: nativeConnection,
    namespace,
    taskQueue: `${queue}-payments`,
    activities: activities.payments,
  });
  return purchasesWorker.runUntil(paymentsWorker.runUntil(body));
}

const start = (i: PurchaseInput): Promise<WorkflowHandle<typeof purchase>> =>
  client.workflow.start(purchase, {
    taskQueue: queue,
    workflowId: workflowIdFor(i.purchaseId),
    args: [i],
  });

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in 20 s');
    await new Promise((r) => setImmediate(r));
  }
}

test('when Temporal cancels a purchase before it is admitted, then it ends CANCELED with the requester, nothing is reserved or charged, and the run closes canceled', async () => {
  const a = fakes(() => Promise.resolve({ chargeId: 'ch_1', attempt: 1 }));
  a.fakes.releaseAdmit();
  const i = input();
  // No worker yet: the cancellation is on the history before the workflow's first step.
  const handle = await start(i);
  await handle.cancel();

  const failure = await withWorkers(a, () => handle.result().catch((err: unknown) => err));

  expect(failure).toBeInstanceOf(WorkflowFailedError);
  expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect(a.fakes.calls).toEqual(['cancelRequester', 'settle']);
  expect(a.fakes.settlements[0]).toMatchObject({
    change: {
      to: 'CANCELED',
      by: 'operator',
      actor: 'ops@example',
      reason: 'canceled_by_operator',
      note: 'canceled_from_temporal',
    },
    event: { type: 'purchase.canceled' },
  });
});

test('when Temporal cancels a purchase while it is being admitted, then the charge still runs and it ends APPROVED', async () => {
  const a = fakes(() => Promise.resolve({ chargeId: 'ch_1', attempt: 1 }));
  const i = input();

  const result = await withWorkers(a, async () => {
    const handle = await start(i);
    await until(() => a.fakes.calls.includes('admit'));
    await handle.cancel();
    a.fakes.releaseAdmit();
    return handle.result();
  });

  expect(result).toEqual({ status: 'APPROVED', chargeId: 'ch_1' });
  expect(a.fakes.charges).toHaveLength(1);
});

test('when a purchase is charged, then the provider key is derived from the purchase id, not from the client key', async () => {
  const a = fakes(() => Promise.resolve({ chargeId: 'ch_1', attempt: 1 }));
  a.fakes.releaseAdmit();
  const i = input();

  const { result, events } = await withWorkers(a, async () => {
    const handle = await start(i);
    const outcome = await handle.result();
    return { result: outcome, events: (await handle.fetchHistory()).events ?? [] };
  });

  expect(result).toEqual({ status: 'APPROVED', chargeId: 'ch_1' });
  expect(a.fakes.charges).toEqual([chargeKeyFor(i.purchaseId)]);
  expect(a.fakes.calls).toEqual(['admit', 'charge', 'settle']);
  expect(a.fakes.settlements[0]).toMatchObject({
    change: { to: 'APPROVED', chargeId: 'ch_1', attempts: 1 },
    event: { type: 'payment.approved' },
    topic: 'events',
  });
  // Shape 2 wrote 55 events for the same purchase; each local step is one marker event.
  expect(events.length).toBeLessThanOrEqual(20);
});

test('when an operator retries a FAILED purchase, then the move back to PROCESSING is made as the operator, under the same provider key', async () => {
  let calls = 0;
  const a = fakes(() => {
    calls += 1;
    if (calls <= 2) return Promise.reject(new Error('provider down'));
    return Promise.resolve({ chargeId: 'ch_2', attempt: 1 });
  });
  a.fakes.releaseAdmit();
  const i = input();

  const result = await withWorkers(a, async () => {
    const handle = await start(i);
    await until(() => a.fakes.statuses.some((s) => s.to === 'FAILED'));
    await handle.signal('retry', { operator: 'alice', reason: 'provider back' });
    return handle.result();
  });

  expect(result.status).toBe('APPROVED');
  expect(new Set(a.fakes.charges)).toEqual(new Set([chargeKeyFor(i.purchaseId)]));
  expect(a.fakes.statuses.map((s) => [s.to, s.by ?? 'workflow'])).toEqual([
    ['PROCESSING', 'workflow'],
    ['FAILED', 'workflow'],
    ['PROCESSING', 'operator'],
    ['APPROVED', 'workflow'],
  ]);
  expect(a.fakes.statuses[2]).toMatchObject({ actor: 'alice', note: 'provider back' });
});
