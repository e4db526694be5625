import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { postWebhook, RESPONSE_BODY_BYTES } from './transport';

let server: Server;
let base = '';
let requests = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    if (req.url === '/hang') return;
    if (req.url === '/trickle') {
      res.writeHead(200).write('accepted');
      return;
    }
    if (req.url === '/big') {
      res.writeHead(500).end('é'.repeat(RESPONSE_BODY_BYTES));
      return;
    }
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const development = { timeoutMs: 500, policy: { production: false } };

test('when the receiver answers, then its status and body come back', async () => {
  const result = await postWebhook(new URL(`${base}/ok`), '{}', {}, development);

  expect(result).toMatchObject({ statusCode: 204, body: '' });
  expect(result.error).toBeUndefined();
});

test('when the answer is long, then only its first KiB is kept, cut on a whole character', async () => {
  const result = await postWebhook(new URL(`${base}/big`), '{}', {}, development);

  expect(result.statusCode).toBe(500);
  expect(Buffer.byteLength(result.body ?? '')).toBeLessThanOrEqual(RESPONSE_BODY_BYTES);
  expect(result.body).toMatch(/^é+$/);
});

test('when the receiver hangs, then the attempt ends at the timeout with an error', async () => {
  const started = Date.now();

  const result = await postWebhook(new URL(`${base}/hang`), '{}', {}, development);

  expect(result).toMatchObject({ error: 'no answer within 500 ms' });
  expect(result.statusCode).toBeUndefined();
  expect(Date.now() - started).toBeLessThan(1500);
});

test('when the status line comes but the body never ends, then the status is the answer', async () => {
  const result = await postWebhook(new URL(`${base}/trickle`), '{}', {}, development);

  expect(result).toMatchObject({ statusCode: 200, body: 'accepted' });
  expect(result.error).toBeUndefined();
});

test('when nothing listens, then the connection error is the answer', async () => {
  const result = await postWebhook(new URL('http://127.0.0.1:9/x'), '{}', {}, development);

  expect(result.error).toMatch(/ECONNREFUSED/);
});

test.each(['127.0.0.1', 'localhost'])(
  'when production is asked to deliver to %s, then it refuses without connecting',
  async (host) => {
    const before = requests;
    const url = new URL(base.replace('127.0.0.1', host) + '/ok');

    const result = await postWebhook(
      url,
      '{}',
      {},
      { ...development, policy: { production: true } },
    );

    expect(result).toMatchObject({ refused: true });
    expect(result.error).toMatch(/not a public internet address/);
    expect(requests).toBe(before);
  },
);
