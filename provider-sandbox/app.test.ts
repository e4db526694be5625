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

function post(body: unknown, path = '/charges'): Promise<Response> {
  return fetch(sandbox.url(path), {
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

/** A request abandoned after 200 ms, as a client past its timeout would. */
function abandonPost(body: unknown, path: string): Promise<unknown> {
  return fetch(sandbox.url(path), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(200),
  }).then(
    () => 'answered',
    (err: Error) => err.name,
  );
}

/** A charge request abandoned after 200 ms. */
const abandon = (token: string): Promise<unknown> => abandonPost({ ...visa, token }, '/charges');

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

describe('authorizations, captures, voids and refunds', () => {
  interface Movement {
    id: string;
    kind: string;
    amount: number;
    currency: string;
    idempotencyKey: string;
    parentId?: string;
  }

  const hold = { ...visa, idempotencyKey: 'auth-1' };

  const capture = (authorizationId: string, amount: number, idempotencyKey = 'cap-1') =>
    post({ authorizationId, amount, idempotencyKey }, '/captures');
  const voidOf = (authorizationId: string, idempotencyKey = 'void-1') =>
    post({ authorizationId, idempotencyKey }, '/voids');
  const refund = (paymentId: string, amount: number, idempotencyKey = 're-1') =>
    post({ paymentId, amount, idempotencyKey }, '/refunds');

  /** The movement a request made; fails the test unless it answered 201. */
  async function made(request: Promise<Response>): Promise<Movement> {
    const res = await request;
    expect(res.status).toBe(201);
    return (await res.json()) as Movement;
  }

  const authorize = (body: Partial<typeof hold> = {}) =>
    made(post({ ...hold, ...body }, '/authorizations'));
  const charge = (body: Partial<typeof visa> = {}) => made(post({ ...visa, ...body }));

  async function movements(query = ''): Promise<Movement[]> {
    const res = await fetch(sandbox.url(`/movements${query}`));
    expect(res.status).toBe(200);
    return ((await res.json()) as { data: Movement[] }).data;
  }

  async function errorOf(res: Response): Promise<{ status: number; code: string }> {
    const { error } = (await res.json()) as { error: { code: string } };
    return { status: res.status, code: error.code };
  }

  test('when an authorization is approved, then 201 with an authorization movement, and 200 with it on replay', async () => {
    const first = await post(hold, '/authorizations');
    const replayed = await post(hold, '/authorizations');

    expect(first.status).toBe(201);
    const body = (await first.json()) as Movement;
    expect(body).toEqual({
      id: expect.stringMatching(/^auth_[0-9a-f]{24}$/) as unknown,
      kind: 'authorization',
      status: 'succeeded',
      amount: 1000,
      currency: 'EUR',
      idempotencyKey: 'auth-1',
      createdAt: expect.any(String) as unknown,
    });
    expect(replayed.status).toBe(200);
    expect(await replayed.json()).toEqual(body);
  });

  test.each([
    ['tok_decline', 402, 'insufficient_funds'],
    ['tok_down', 503, 'provider_unavailable'],
    ['tok_nope', 400, 'invalid_token'],
  ])(
    'when an authorization uses %s, then %i %s and nothing is held',
    async (token, status, code) => {
      const res = await post({ ...hold, token }, '/authorizations');

      expect(await errorOf(res)).toEqual({ status, code });
      expect(await movements()).toEqual([]);
    },
  );

  test('when an authorization is flaky once, then 503 and the retry under the key holds it', async () => {
    const first = await post({ ...hold, token: 'tok_flaky_1' }, '/authorizations');
    const second = await post({ ...hold, token: 'tok_flaky_1' }, '/authorizations');

    expect([first.status, second.status]).toEqual([503, 201]);
  });

  test('when a key used for a charge is used for an authorization, then 409 idempotency_key_reused', async () => {
    await charge();

    const res = await post(visa, '/authorizations');

    expect(await errorOf(res)).toEqual({ status: 409, code: 'idempotency_key_reused' });
  });

  test('when part of an authorization is captured, then 201 with a capture in its currency, and 200 on replay', async () => {
    const auth = await authorize({ currency: 'USD' });

    const first = await capture(auth.id, 600);
    const replayed = await capture(auth.id, 600);

    expect(first.status).toBe(201);
    const captured = (await first.json()) as Movement;
    expect(captured).toMatchObject({
      id: expect.stringMatching(/^cap_[0-9a-f]{24}$/) as unknown,
      kind: 'capture',
      status: 'succeeded',
      amount: 600,
      currency: 'USD',
      idempotencyKey: 'cap-1',
      parentId: auth.id,
    });
    expect(replayed.status).toBe(200);
    expect(await replayed.json()).toEqual(captured);
  });

  test('when an authorization was captured, then another capture or a void is 409 authorization_already_captured', async () => {
    const auth = await authorize();
    await made(capture(auth.id, 400));

    const again = await capture(auth.id, 400, 'cap-2');
    const voided = await voidOf(auth.id);

    expect(await errorOf(again)).toEqual({ status: 409, code: 'authorization_already_captured' });
    expect(await errorOf(voided)).toEqual({ status: 409, code: 'authorization_already_captured' });
  });

  test('when a capture asks for more than was authorized, then 422 and a capture of all of it still works', async () => {
    const auth = await authorize();

    const over = await capture(auth.id, 1001);
    const whole = await capture(auth.id, 1000, 'cap-2');

    expect(await errorOf(over)).toEqual({ status: 422, code: 'amount_exceeds_authorized' });
    expect(whole.status).toBe(201);
  });

  test('when a capture or void names a charge or nothing known, then 404 authorization_not_found', async () => {
    const paid = await charge();

    const ofCharge = await capture(paid.id, 1);
    const ofNothing = await voidOf('auth_x');

    expect(await errorOf(ofCharge)).toEqual({ status: 404, code: 'authorization_not_found' });
    expect(await errorOf(ofNothing)).toEqual({ status: 404, code: 'authorization_not_found' });
  });

  test('when an authorization is voided, then 201 releasing all of it, and later voids or captures are 409 authorization_voided', async () => {
    const auth = await authorize();

    const voided = await made(voidOf(auth.id));
    const replayed = await voidOf(auth.id);
    const again = await voidOf(auth.id, 'void-2');
    const captured = await capture(auth.id, 1);

    expect(voided).toMatchObject({
      id: expect.stringMatching(/^void_[0-9a-f]{24}$/) as unknown,
      kind: 'void',
      amount: 1000,
      currency: 'EUR',
      parentId: auth.id,
    });
    expect(replayed.status).toBe(200);
    expect(await replayed.json()).toEqual(voided);
    expect(await errorOf(again)).toEqual({ status: 409, code: 'authorization_voided' });
    expect(await errorOf(captured)).toEqual({ status: 409, code: 'authorization_voided' });
  });

  test('when a charge is refunded in parts, then each part is a refund and going past the charge is 422', async () => {
    const paid = await charge();

    const first = await made(refund(paid.id, 700));
    const over = await refund(paid.id, 301, 're-2');
    const rest = await refund(paid.id, 300, 're-3');

    expect(first).toMatchObject({
      id: expect.stringMatching(/^re_[0-9a-f]{24}$/) as unknown,
      kind: 'refund',
      amount: 700,
      currency: 'EUR',
      parentId: paid.id,
    });
    expect(await errorOf(over)).toEqual({ status: 422, code: 'refund_exceeds_payment' });
    expect(rest.status).toBe(201);
  });

  test('when a capture is refunded, then the limit is what was captured, not what was authorized', async () => {
    const auth = await authorize();
    const captured = await made(capture(auth.id, 400));

    const over = await refund(captured.id, 401);
    const whole = await refund(captured.id, 400, 're-2');

    expect(await errorOf(over)).toEqual({ status: 422, code: 'refund_exceeds_payment' });
    expect(whole.status).toBe(201);
  });

  test('when a refund names an authorization or nothing known, then 404 payment_not_found', async () => {
    const auth = await authorize();

    const ofAuth = await refund(auth.id, 1);
    const ofNothing = await refund('ch_x', 1, 're-2');

    expect(await errorOf(ofAuth)).toEqual({ status: 404, code: 'payment_not_found' });
    expect(await errorOf(ofNothing)).toEqual({ status: 404, code: 'payment_not_found' });
  });

  test('when a refund key is reused for another amount, then 409 idempotency_key_reused', async () => {
    const paid = await charge();
    await made(refund(paid.id, 100));

    const res = await refund(paid.id, 200);

    expect(await errorOf(res)).toEqual({ status: 409, code: 'idempotency_key_reused' });
  });

  test.each([
    ['/authorizations', { ...visa, extra: 1 }],
    ['/captures', { authorizationId: 'auth_x', amount: 1, idempotencyKey: 'k', extra: 1 }],
    ['/captures', { authorizationId: 'auth_x', amount: 1.5, idempotencyKey: 'k' }],
    ['/voids', { authorizationId: 'auth_x', idempotencyKey: 'k', amount: 1 }],
    ['/voids', { authorizationId: '', idempotencyKey: 'k' }],
    ['/refunds', { paymentId: 'ch_x', amount: 0, idempotencyKey: 'k' }],
    ['/refunds', { paymentId: 'ch_x', idempotencyKey: 'k' }],
  ])('when %s gets %j, then 400 validation_failed', async (path, body) => {
    const res = await post(body, path);

    expect(await errorOf(res)).toEqual({ status: 400, code: 'validation_failed' });
  });

  test('when movements are listed, then every one comes back oldest first, charges included, and the net money adds up', async () => {
    const paid = await charge({ idempotencyKey: 'ch-1' });
    const auth = await authorize({ idempotencyKey: 'auth-1' });
    const captured = await made(capture(auth.id, 800));
    await made(refund(captured.id, 300, 're-1'));
    await made(refund(paid.id, 1000, 're-2'));

    const all = await movements();

    expect(all.map((m) => `${m.kind}:${m.idempotencyKey}`)).toEqual([
      'charge:ch-1',
      'authorization:auth-1',
      'capture:cap-1',
      'refund:re-1',
      'refund:re-2',
    ]);
    const sign: Record<string, number> = { charge: 1, capture: 1, refund: -1 };
    const net = all.reduce((sum, m) => sum + (sign[m.kind] ?? 0) * m.amount, 0);
    expect(net).toBe(500);
  });

  test('when movements are filtered by key, then only that movement comes back, or none', async () => {
    const auth = await authorize();

    expect(await movements('?idempotencyKey=auth-1')).toEqual([auth]);
    expect(await movements('?idempotencyKey=other')).toEqual([]);
  });

  test('when the movements filter is misspelt, then 400 rather than the whole ledger', async () => {
    const res = await fetch(sandbox.url('/movements?key=auth-1'));

    expect(res.status).toBe(400);
  });

  describe('failure tokens', () => {
    /** Makes a payment with `token`; returns the `op` on it, under `key`, to send. */
    async function followUpOn(op: string, token: string, key = `${op}-1`) {
      const idempotencyKey = `payment-of-${key}`;
      if (op === 'refund') {
        const paid = await charge({ token, idempotencyKey });
        return { path: '/refunds', body: { paymentId: paid.id, amount: 500, idempotencyKey: key } };
      }
      const auth = await authorize({ token, idempotencyKey });
      const body = { authorizationId: auth.id, idempotencyKey: key };
      return op === 'capture'
        ? { path: '/captures', body: { ...body, amount: 500 } }
        : { path: '/voids', body };
    }

    const ops = ['capture', 'void', 'refund'];

    test.each(ops)(
      'when the token is tok_%s_declined, then 402 and nothing is recorded',
      async (op) => {
        const { path, body } = await followUpOn(op, `tok_${op}_declined`);

        const res = await post(body, path);

        expect(await errorOf(res)).toEqual({ status: 402, code: `${op}_declined` });
        expect(await movements(`?idempotencyKey=${op}-1`)).toEqual([]);
      },
    );

    test.each(ops)(
      'when the token is tok_%s_flaky_2, then two 503s under the key and the third succeeds once',
      async (op) => {
        const { path, body } = await followUpOn(op, `tok_${op}_flaky_2`);

        const statuses = [];
        for (let i = 0; i < 4; i++) statuses.push((await post(body, path)).status);

        expect(statuses).toEqual([503, 503, 201, 200]);
        expect(await movements(`?idempotencyKey=${op}-1`)).toHaveLength(1);
      },
    );

    test.each(ops)(
      'when the token is tok_%s_down, then every attempt is 503 with Retry-After',
      async (op) => {
        const { path, body } = await followUpOn(op, `tok_${op}_down`);

        const first = await post(body, path);
        const second = await post(body, path);

        expect(await errorOf(first)).toEqual({ status: 503, code: 'provider_unavailable' });
        expect(first.headers.get('retry-after')).toBe('1');
        expect(second.status).toBe(503);
      },
    );

    test.each(ops)(
      'when the token is tok_%s_timeout, then the movement is recorded before any answer and a retry gets it',
      async (op) => {
        const { path, body } = await followUpOn(op, `tok_${op}_timeout`);

        expect(await abandonPost(body, path)).toBe('TimeoutError');
        const retried = await post(body, path);

        expect(retried.status).toBe(200);
        expect(await movements(`?idempotencyKey=${op}-1`)).toEqual([await retried.json()]);
      },
    );

    test('when a capture is refunded, then the refund follows the authorization token', async () => {
      const auth = await authorize({ token: 'tok_refund_declined' });
      const captured = await made(capture(auth.id, 500));

      const res = await refund(captured.id, 1);

      expect(await errorOf(res)).toEqual({ status: 402, code: 'refund_declined' });
    });

    test('when the token fails one operation, then the others on that payment succeed', async () => {
      const auth = await authorize({ token: 'tok_void_down' });
      const captured = await made(capture(auth.id, 500));

      const res = await refund(captured.id, 500);

      expect(res.status).toBe(201);
    });

    test('when the ledger refuses a follow-up, then the refusal is answered before the token applies', async () => {
      const { path, body } = await followUpOn('refund', 'tok_refund_down');

      const res = await post({ ...body, amount: 1001 }, path);

      expect(await errorOf(res)).toEqual({ status: 422, code: 'refund_exceeds_payment' });
    });

    test('when follow-ups run under every failure token, then no token reaches the log', async () => {
      for (const how of ['declined', 'flaky_1', 'down', 'timeout']) {
        const { path, body } = await followUpOn('capture', `tok_capture_${how}`, how);
        // Abandoned, so the timeout's held answer does not hold up the test.
        await abandonPost(body, path);
      }
      await followUpOn('refund', 'tok_refund_flaky_1');

      expect(sandbox.logs()).toContain('capture recorded');
      expect(sandbox.logs()).not.toContain('tok_');
    });
  });

  describe('racing requests', () => {
    test('when two refunds that together exceed the charge race, then one is made and the other is 422', async () => {
      const paid = await charge();

      const answers = await Promise.all([
        refund(paid.id, 600, 're-a'),
        refund(paid.id, 600, 're-b'),
      ]);

      expect(answers.map((r) => r.status).sort()).toEqual([201, 422]);
      expect((await movements()).filter((m) => m.kind === 'refund')).toHaveLength(1);
    });

    test('when a capture and a void race, then exactly one wins and the other is 409', async () => {
      const auth = await authorize();

      const answers = await Promise.all([capture(auth.id, 1000), voidOf(auth.id)]);

      expect(answers.map((r) => r.status).sort()).toEqual([201, 409]);
      expect((await movements()).filter((m) => m.parentId === auth.id)).toHaveLength(1);
    });

    test('when two captures with different keys race, then one is made and the other is 409', async () => {
      const auth = await authorize();

      const answers = await Promise.all([
        capture(auth.id, 500, 'cap-a'),
        capture(auth.id, 500, 'cap-b'),
      ]);

      expect(answers.map((r) => r.status).sort()).toEqual([201, 409]);
      expect((await movements()).filter((m) => m.kind === 'capture')).toHaveLength(1);
    });

    test('when 20 refunds with one key race, then one refund is made and every answer is it', async () => {
      const paid = await charge();

      const answers = await Promise.all(Array.from({ length: 20 }, () => refund(paid.id, 100)));

      const bodies = (await Promise.all(answers.map((r) => r.json()))) as Movement[];
      expect(new Set(bodies.map((m) => m.id)).size).toBe(1);
      expect(answers.filter((r) => r.status === 201)).toHaveLength(1);
      expect((await movements()).filter((m) => m.kind === 'refund')).toHaveLength(1);
    });
  });
});
