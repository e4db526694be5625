import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { eventually } from '../config';
import type { Platform } from './harness';
import { call, createProduct, post, purchaseBody, startPlatform } from './harness';
import { chargesFor, finalState, movementsOf, netOf } from './helpers';

let platform: Platform;
beforeAll(async () => {
  platform = await startPlatform({ PROVIDER_TIMEOUT_MS: '3000' }, { paymentWorker: false });
});
afterAll(() => platform.close());

/** The compiled payment-processing worker as its own process, on this platform's queue. */
function paymentWorkerProcess(): ChildProcess {
  return spawn(process.execPath, ['dist/workers/payment-processing.js'], {
    stdio: 'ignore',
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      TEMPORAL_NAMESPACE: platform.config.TEMPORAL_NAMESPACE,
      PAYMENTS_TASK_QUEUE: platform.config.PAYMENTS_TASK_QUEUE,
      PROVIDER_URL: platform.sandboxUrl,
      PROVIDER_TIMEOUT_MS: '3000',
    },
  });
}

test('when the payment worker is killed -9 during a slow charge, then after a restart the purchase completes with one charge', async () => {
  const productId = await createProduct(platform.prisma);
  const first = paymentWorkerProcess();
  const res = await post(platform, purchaseBody(productId, 'tok_slow_2000'));
  const id = res.json.id as string;
  // The sandbox records the charge before its slow answer: the call is now in flight.
  await eventually(
    async () => ((await chargesFor(platform, id)).length === 1 ? true : undefined),
    30000,
  );

  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  const second = paymentWorkerProcess();
  try {
    const done = await finalState(platform, id, ['APPROVED', 'FAILED', 'DECLINED'], 60000);

    expect(done.status).toBe('APPROVED');
    expect(await chargesFor(platform, id)).toHaveLength(1);
  } finally {
    second.kill('SIGTERM');
  }
});

test('when the payment worker is killed -9 during a refund, then after a restart the refund completes once', async () => {
  const productId = await createProduct(platform.prisma);
  const first = paymentWorkerProcess();
  const res = await post(platform, purchaseBody(productId, 'tok_refund_timeout'));
  const id = res.json.id as string;
  await finalState(platform, id, ['APPROVED'], 60000);
  const refund = await call(platform, 'POST', `/v1/purchases/${id}/refunds`, {});
  expect(refund.status).toBe(202);
  // The sandbox records the refund before its late answer: the call is now in flight.
  const refunds = async () => (await movementsOf(platform, id)).filter((m) => m.kind === 'refund');
  await eventually(async () => ((await refunds()).length === 1 ? true : undefined), 30000);

  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  const second = paymentWorkerProcess();
  try {
    const done = await finalState(platform, id, ['REFUNDED'], 60000);

    expect(done.amountRefunded).toBe(res.json.amount);
    expect(await refunds()).toHaveLength(1);
    expect(netOf(await movementsOf(platform, id))).toBe(0);
  } finally {
    second.kill('SIGTERM');
  }
});
