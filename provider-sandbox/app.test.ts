import { Writable } from 'node:stream';
import { listen } from '../common/http';
import { createLogger } from '../common/logger';
import { createSandboxApp } from './app';

interface Sandbox {
  url: (path: string) => string;
  logs: () => string;
  close: () => Promise<void>;
}

let sandbox: Sandbox;

beforeEach(async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const app = createSandboxApp(createLogger('provider-sandbox', 'trace', sink), {
    timeoutAnswerMs: 60000,
  });
  const http = await listen(app, 0);
  sandbox = {
    url: (path) => `http://127.0.0.1:${http.port}${path}`,
    logs: () => lines.join(''),
    close: async () => {
      http.server.closeAllConnections();
      await http.close();
    },
  };
});

afterEach(() => sandbox.close());

function post(body: unknown): Promise<Response> {
  return fetch(sandbox.url('/charges'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const visa = { amount: 1000, currency: 'EUR', token: 'tok_visa', idempotencyKey: 'key-1' };

test('when a charge is approved, then 201 with the charge, and 200 with the same charge on replay', async () => {
  const created = await post(visa);
  const replayed = await post(visa);

  expect(created.status).toBe(201);
  const charge = (await created.json()) as Record<string, unknown>;
  expect(charge).toEqual({
    id: expect.stringMatching(/^ch_[0-9a-f]{24}$/) as unknown,
    status: 'succeeded',
    amount: 1000,
    currency: 'EUR',
    idempotencyKey: 'key-1',
    createdAt: expect.any(String) as unknown,
  });
  expect(replayed.status).toBe(200);
  expect(await replayed.json()).toEqual(charge);
});

test('when the body has an unknown field, then 400 validation_failed', async () => {
  const res = await post({ ...visa, cardNumber: '4242424242424242' });

  expect(res.status).toBe(400);
  expect(await res.json()).toMatchObject({ error: { code: 'validation_failed' } });
});

test.each([
  ['a fractional amount', { amount: 10.5 }],
  ['a zero amount', { amount: 0 }],
  ['a lowercase currency', { currency: 'eur' }],
  ['an empty key', { idempotencyKey: '' }],
  ['a 301-character key', { idempotencyKey: 'k'.repeat(301) }],
  ['no token', { token: undefined }],
])('when the body has %s, then 400 validation_failed', async (_what, change) => {
  const res = await post({ ...visa, ...change });

  expect(res.status).toBe(400);
  expect(await res.json()).toMatchObject({ error: { code: 'validation_failed' } });
});

test('when the card has no funds, then 402 insufficient_funds in the common error shape', async () => {
  const res = await post({ ...visa, token: 'tok_decline' });

  expect(res.status).toBe(402);
  expect(await res.json()).toEqual({
    error: {
      code: 'insufficient_funds',
      message: expect.any(String) as unknown,
      details: null,
      requestId: expect.any(String) as unknown,
    },
  });
});

test('when the provider is down, then 503 provider_unavailable with Retry-After', async () => {
  const res = await post({ ...visa, token: 'tok_down' });

  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('1');
  expect(await res.json()).toMatchObject({ error: { code: 'provider_unavailable' } });
});

test('when a key is reused with another token, then 409 idempotency_key_reused', async () => {
  await post(visa);

  const res = await post({ ...visa, token: 'tok_slow_1' });

  expect(res.status).toBe(409);
  expect(await res.json()).toMatchObject({ error: { code: 'idempotency_key_reused' } });
});

test('when charges are listed, then the whole ledger comes back oldest first', async () => {
  await post({ ...visa, idempotencyKey: 'a' });
  await post({ ...visa, idempotencyKey: 'b', token: 'tok_decline' });
  await post({ ...visa, idempotencyKey: 'c' });

  const res = await fetch(sandbox.url('/charges'));

  const { data } = (await res.json()) as { data: { idempotencyKey: string }[] };
  expect(data.map((c) => c.idempotencyKey)).toEqual(['a', 'c']);
});

test('when charges are filtered by an unknown key, then data is empty', async () => {
  await post(visa);

  const res = await fetch(sandbox.url('/charges?idempotencyKey=other'));

  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ data: [] });
});

test('when the filter is misspelt, then 400 rather than the whole ledger', async () => {
  const res = await fetch(sandbox.url('/charges?idempotency_key=key-1'));

  expect(res.status).toBe(400);
});

test('when a timeout charge is posted, then it is recorded before any answer', async () => {
  const abandoned = fetch(sandbox.url('/charges'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...visa, token: 'tok_timeout' }),
    signal: AbortSignal.timeout(200),
  });
  await expect(abandoned).rejects.toMatchObject({ name: 'TimeoutError' });

  const res = await fetch(sandbox.url('/charges?idempotencyKey=key-1'));

  const { data } = (await res.json()) as { data: unknown[] };
  expect(data).toHaveLength(1);
});

/** A charge request abandoned after 200 ms, as a client past its timeout would. */
function abandon(token: string): Promise<unknown> {
  return fetch(sandbox.url('/charges'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...visa, token }),
    signal: AbortSignal.timeout(200),
  }).then(
    () => 'answered',
    (err: Error) => err.name,
  );
}

test('when a lost charge is posted twice, then both answers are lost and one charge is recorded', async () => {
  expect(await abandon('tok_lost')).toBe('TimeoutError');
  expect(await abandon('tok_lost')).toBe('TimeoutError');

  const res = await fetch(sandbox.url('/charges?idempotencyKey=key-1'));

  expect(((await res.json()) as { data: unknown[] }).data).toHaveLength(1);
});

test('when a tok_lost_lookup_2 charge is looked up, then the first two lookups answer 503 and the third finds it', async () => {
  expect(await abandon('tok_lost_lookup_2')).toBe('TimeoutError');
  const lookup = () => fetch(sandbox.url('/charges?idempotencyKey=key-1'));

  const statuses = [(await lookup()).status, (await lookup()).status];
  const found = await lookup();

  expect(statuses).toEqual([503, 503]);
  expect(((await found.json()) as { data: unknown[] }).data).toHaveLength(1);
});

test('when charges are made with every kind of token, then no token reaches the log', async () => {
  const tokens = [
    'tok_visa',
    'tok_decline',
    'tok_invalid',
    'tok_flaky_1',
    'tok_down',
    'tok_slow_1',
  ];

  for (const [i, token] of tokens.entries())
    await post({ ...visa, token, idempotencyKey: `k${i}` });
  await post({ ...visa, token: 'tok_decline', idempotencyKey: 'k0' });
  await abandon('tok_lost_lookup_1');

  expect(sandbox.logs()).toContain('charge recorded');
  expect(sandbox.logs()).not.toContain('tok_');
});
