import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { testConfig } from '../test/config';
import type { createWebhookActivities } from '../webhooks/activities';
import { DELIVERY_FAILED } from '../webhooks/contract';
import type { DeliveryInput } from '../webhooks/contract';
import { webhookDelivery } from './webhooks';

/*
 * The delivery workflow's retry policy with a fake activity, on the stack's Temporal
 * server (namespace gateway-test) and a task queue of this file's own.
 */
type Activities = ReturnType<typeof createWebhookActivities>;

const taskQueue = `test-webhook-workflow-${randomUUID().slice(0, 8)}`;
let attempts: number[] = [];
let deliver: Activities['deliverWebhook'] = () => Promise.reject(new Error('unset'));
let worker: Worker;
let running: Promise<void>;
let connection: Connection;
let client: Client;
let workerConnection: NativeConnection;

beforeAll(async () => {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Installed by another file in this process.
  }
  workerConnection = await NativeConnection.connect({ address: testConfig.TEMPORAL_ADDRESS });
  worker = await Worker.create({
    connection: workerConnection,
    namespace: testConfig.TEMPORAL_NAMESPACE,
    taskQueue,
    workflowsPath: require.resolve('./webhooks'),
    activities: { deliverWebhook: (input: DeliveryInput) => deliver(input) },
  });
  running = worker.run();
  connection = await Connection.connect({ address: testConfig.TEMPORAL_ADDRESS });
  client = new Client({ connection, namespace: testConfig.TEMPORAL_NAMESPACE });
});
afterAll(async () => {
  worker.shutdown();
  await running;
  await workerConnection.close();
  await connection.close();
});
beforeEach(() => {
  attempts = [];
});

const input = (giveUpAfterMs: number): DeliveryInput => ({
  eventId: `evt_${randomUUID()}`,
  endpointId: `we_${randomUUID().replace(/-/g, '')}`,
  retry: {
    initialIntervalMs: 100,
    maximumIntervalMs: 200,
    backoffCoefficient: 2,
    giveUpAfterMs,
    timeoutMs: 1000,
  },
});

const run = (i: DeliveryInput) =>
  client.workflow.execute(webhookDelivery, {
    taskQueue,
    workflowId: `test-webhook-${randomUUID()}`,
    args: [i],
  });

test('when every attempt fails, then the delivery is retried until the give-up time and ends gave_up', async () => {
  deliver = () => {
    attempts.push(Date.now());
    return Promise.reject(ApplicationFailure.create({ type: DELIVERY_FAILED, message: '503' }));
  };
  const started = Date.now();

  const outcome = await run(input(4000));

  expect(outcome.outcome).toBe('gave_up');
  expect(outcome.outcome === 'gave_up' && outcome.reason).toMatch(/timeout|503/i);
  // The dev server fires short retry timers about a second apart.
  expect(attempts.length).toBeGreaterThanOrEqual(3);
  // No attempt is started past the give-up time.
  expect(Math.max(...attempts) - started).toBeLessThan(4500);
});

test('when an attempt succeeds after failures, then the delivery ends delivered', async () => {
  deliver = () => {
    attempts.push(Date.now());
    return attempts.length < 3
      ? Promise.reject(ApplicationFailure.create({ type: DELIVERY_FAILED, message: '500' }))
      : Promise.resolve({ outcome: 'delivered', statusCode: 200 } as const);
  };

  const outcome = await run(input(60000));

  expect(outcome).toEqual({ outcome: 'delivered', statusCode: 200 });
  expect(attempts).toHaveLength(3);
});

test('when the endpoint is gone, then the activity skips and the delivery ends at once', async () => {
  deliver = () => {
    attempts.push(Date.now());
    return Promise.resolve({ outcome: 'skipped', reason: 'endpoint_deleted' } as const);
  };

  const outcome = await run(input(60000));

  expect(outcome).toEqual({ outcome: 'skipped', reason: 'endpoint_deleted' });
  expect(attempts).toHaveLength(1);
});
