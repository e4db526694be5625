import { randomUUID } from 'node:crypto';
import { exited, logLine, startService as start } from './processes';

test('when the sandbox gets SIGTERM with a request in flight, then it finishes that request and exits 0', async () => {
  const child = start('dist/provider-sandbox/main.js', { PROVIDER_SANDBOX_PORT: '0' });
  const { port } = await logLine(child, 'listening');
  const inFlight = fetch(`http://127.0.0.1:${String(port)}/charges`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      amount: 100,
      currency: 'BRL',
      token: 'tok_slow_500',
      idempotencyKey: randomUUID(),
    }),
  });
  await new Promise((r) => setTimeout(r, 100)); // let the request reach the server

  child.kill('SIGTERM');
  const [res, exit] = await Promise.all([inFlight, exited(child)]);

  expect(res.status).toBe(201);
  expect(exit.code).toBe(0);
  expect(exit.ms).toBeLessThan(15000);
});

test.each([
  ['api', 'dist/api/main.js', { API_PORT: '0' }, 'listening'],
  ['produto', 'dist/produto/main.js', { PRODUTO_PORT: '0' }, 'listening'],
  [
    'payment-processing',
    'dist/workers/payment-processing.js',
    { PAYMENTS_TASK_QUEUE: `shutdown-${randomUUID()}` },
    'worker started',
  ],
  [
    'process-purchases',
    'dist/workers/process-purchases.js',
    { PURCHASES_TASK_QUEUE: `shutdown-${randomUUID()}` },
    'worker started',
  ],
])(
  'when %s gets SIGTERM, then it drains and exits 0 within the bound',
  async (_name, entry, env, ready) => {
    const child = start(entry, { ...env, SHUTDOWN_TIMEOUT_MS: '10000' });
    await logLine(child, ready);

    child.kill('SIGTERM');
    const exit = await exited(child);

    expect(exit.code).toBe(0);
    expect(exit.ms).toBeLessThan(10000);
  },
);
