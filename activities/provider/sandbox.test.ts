import { randomUUID } from 'node:crypto';
import { createHttpApp, listen } from '../../common/http';
import { createLogger } from '../../common/logger';
import type { SandboxOptions } from '../../provider-sandbox/app';
import { createSandboxApp } from '../../provider-sandbox/app';
import type { Charge } from '../../provider-sandbox/ledger';
import { SandboxProvider } from './sandbox';
import { ProviderProtocolError } from './types';
import type { ChargeRequest, MovementOutcome, ProviderMovement } from './types';

const silent = createLogger('provider-sandbox-test', 'silent');
const CLIENT_TIMEOUT_MS = 5000;

interface RunningServer {
  baseUrl: string;
  close: () => Promise<void>;
}

const servers: RunningServer[] = [];

async function startServer(app: ReturnType<typeof createHttpApp>): Promise<RunningServer> {
  const http = await listen(app, 0);
  let closed = false;
  const running = {
    baseUrl: `http://127.0.0.1:${http.port}`,
    close: async () => {
      if (closed) return;
      closed = true;
      // Cuts off answers still held back (slow, timeout), so no timer outlives the test.
      http.server.closeAllConnections();
      await http.close();
    },
  };
  servers.push(running);
  return running;
}

const startSandbox = (options?: SandboxOptions): Promise<RunningServer> =>
  startServer(createSandboxApp(silent, options));

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function chargeRequest(overrides: Partial<ChargeRequest> = {}): ChargeRequest {
  return {
    amountMinor: 1999,
    currency: 'EUR',
    token: 'tok_visa',
    idempotencyKey: `purchase-${randomUUID()}`,
    ...overrides,
  };
}

async function ledgerOf(sandbox: RunningServer): Promise<Charge[]> {
  const res = await fetch(`${sandbox.baseUrl}/charges`);
  return ((await res.json()) as { data: Charge[] }).data;
}

test('when the card is good, then the charge is approved for the amount asked', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);

  const outcome = await provider.charge(chargeRequest({ amountMinor: 2500, currency: 'USD' }));

  expect(outcome).toEqual({
    kind: 'approved',
    charge: {
      id: expect.stringMatching(/^ch_\w+$/) as unknown,
      amountMinor: 2500,
      currency: 'USD',
    },
  });
});

test('when the same key is replayed, then the same charge comes back and the ledger holds one', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);
  const req = chargeRequest();

  const first = await provider.charge(req);
  const replay = await provider.charge(req);

  expect(first.kind).toBe('approved');
  expect(replay).toEqual(first);
  expect(await ledgerOf(sandbox)).toHaveLength(1);
});

test('when 50 charges with one key arrive at once, then exactly one charge is made', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);
  const req = chargeRequest();

  const outcomes = await Promise.all(Array.from({ length: 50 }, () => provider.charge(req)));

  const ids = new Set(outcomes.map((o) => (o.kind === 'approved' ? o.charge.id : o.kind)));
  expect([...ids]).toEqual([expect.stringMatching(/^ch_/)]);
  expect(await ledgerOf(sandbox)).toHaveLength(1);
});

test('when the card has no funds, then the charge is declined and nothing is recorded', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);
  const req = chargeRequest({ token: 'tok_decline' });

  const outcome = await provider.charge(req);

  expect(outcome).toEqual({ kind: 'declined', reason: 'insufficient_funds' });
  expect(await provider.findCharge(req.idempotencyKey)).toBeUndefined();
  expect(await ledgerOf(sandbox)).toEqual([]);
});

test.each(['tok_invalid', 'tok_unknown', ''])(
  'when the token is %p, then the charge is declined as invalid_token',
  async (token) => {
    const sandbox = await startSandbox();
    const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);

    const outcome = await provider.charge(chargeRequest({ token }));

    expect(outcome).toEqual({ kind: 'declined', reason: 'invalid_token' });
  },
);

test('when the provider is flaky twice, then two attempts are unavailable and the third approves once', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);
  const req = chargeRequest({ token: 'tok_flaky_2' });

  const first = await provider.charge(req);
  const second = await provider.charge(req);
  const third = await provider.charge(req);

  expect(first).toEqual({
    kind: 'unavailable',
    message: expect.stringContaining('503') as unknown,
  });
  expect(second.kind).toBe('unavailable');
  expect(third.kind).toBe('approved');
  expect(await ledgerOf(sandbox)).toHaveLength(1);
});

test('when the provider is slow but within the client timeout, then the charge is approved late', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);
  const started = Date.now();

  const outcome = await provider.charge(chargeRequest({ token: 'tok_slow_300' }));

  expect(outcome.kind).toBe('approved');
  expect(Date.now() - started).toBeGreaterThanOrEqual(290);
});

test('when the answer never comes in time, then the outcome is timeout and the charge is found by key', async () => {
  const sandbox = await startSandbox({ timeoutAnswerMs: 60000 });
  const impatient = new SandboxProvider(sandbox.baseUrl, 200);
  const req = chargeRequest({ token: 'tok_timeout' });

  const outcome = await impatient.charge(req);
  const found = await impatient.findCharge(req.idempotencyKey);
  const retried = await impatient.charge(req);

  expect(outcome).toEqual({ kind: 'timeout', message: 'no answer within 200 ms' });
  expect(found).toEqual({
    id: expect.stringMatching(/^ch_/) as unknown,
    amountMinor: 1999,
    currency: 'EUR',
  });
  expect(retried).toEqual({ kind: 'approved', charge: found });
  expect(await ledgerOf(sandbox)).toHaveLength(1);
});

test('when the provider is down, then every attempt is unavailable', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);
  const req = chargeRequest({ token: 'tok_down' });

  const outcomes = [await provider.charge(req), await provider.charge(req)];

  expect(outcomes.map((o) => o.kind)).toEqual(['unavailable', 'unavailable']);
  expect(await ledgerOf(sandbox)).toEqual([]);
});

test('when nothing listens at the provider address, then the charge is unavailable', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);
  await sandbox.close();

  const outcome = await provider.charge(chargeRequest());

  expect(outcome).toEqual({ kind: 'unavailable', message: 'network error: ECONNREFUSED' });
});

test('when a key is reused with another amount, then charge throws idempotency_key_reused', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);
  const req = chargeRequest();
  await provider.charge(req);

  const reuse = provider.charge({ ...req, amountMinor: req.amountMinor + 1 });

  await expect(reuse).rejects.toThrow(ProviderProtocolError);
  await expect(reuse).rejects.toMatchObject({ code: 'idempotency_key_reused' });
  expect(await ledgerOf(sandbox)).toHaveLength(1);
});

test('when the request body is invalid, then charge throws request_rejected naming validation_failed', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);

  const rejected = provider.charge(chargeRequest({ amountMinor: 10.5, currency: 'eur' }));

  await expect(rejected).rejects.toMatchObject({
    code: 'request_rejected',
    message: expect.stringContaining('400 (validation_failed)') as unknown,
  });
});

test('when no charge was made under a key, then findCharge returns undefined', async () => {
  const sandbox = await startSandbox();
  const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);

  const found = await provider.findCharge('never-used');

  expect(found).toBeUndefined();
});

describe('answers the sandbox never gives', () => {
  const captureOfAuth1 = { authorizationId: 'auth_1', amountMinor: 5, idempotencyKey: 'k' };

  /** A provider whose every request, of any method and path, gets this answer. */
  async function startFake(status: number, body: string): Promise<SandboxProvider> {
    const app = createHttpApp(silent, (a) => {
      a.use((_req, res) => {
        res.status(status).type('application/json').send(body);
      });
    });
    const fake = await startServer(app);
    return new SandboxProvider(fake.baseUrl, CLIENT_TIMEOUT_MS);
  }

  test('when the provider answers 429, then the charge is unavailable', async () => {
    const provider = await startFake(429, '{"error":{"code":"rate_limited"}}');

    const outcome = await provider.charge(chargeRequest());

    expect(outcome).toEqual({
      kind: 'unavailable',
      message: 'the provider answered 429 (rate_limited)',
    });
  });

  test('when a gateway answers 502 with an HTML page, then the charge is unavailable', async () => {
    const provider = await startFake(502, '<html>bad gateway</html>');

    const outcome = await provider.charge(chargeRequest());

    expect(outcome).toEqual({
      kind: 'unavailable',
      message: 'the provider answered 502 (no error code)',
    });
  });

  test('when a decline carries another code, then it is declined as card_declined', async () => {
    const provider = await startFake(402, '{"error":{"code":"do_not_honor"}}');

    const outcome = await provider.charge(chargeRequest());

    expect(outcome).toEqual({ kind: 'declined', reason: 'card_declined' });
  });

  test('when a 201 carries a charge for another amount, then charge throws malformed_response', async () => {
    const other = {
      id: 'ch_1',
      status: 'succeeded',
      amount: 1,
      currency: 'EUR',
      idempotencyKey: 'k',
    };
    const provider = await startFake(201, JSON.stringify(other));

    const charged = provider.charge(chargeRequest({ idempotencyKey: 'k' }));

    await expect(charged).rejects.toMatchObject({ code: 'malformed_response' });
  });

  test('when the error is unknown to the contract, then charge throws request_rejected', async () => {
    const provider = await startFake(401, '{"error":{"code":"unauthorized","message":"no key"}}');

    const charged = provider.charge(chargeRequest());

    await expect(charged).rejects.toThrow('the provider answered 401 (unauthorized): no key');
  });

  test('when a 201 carries a capture for another authorization, then capture throws malformed_response', async () => {
    const other = {
      id: 'cap_1',
      kind: 'capture',
      status: 'succeeded',
      amount: 5,
      currency: 'EUR',
      idempotencyKey: 'k',
      parentId: 'auth_other',
    };
    const provider = await startFake(201, JSON.stringify(other));

    const captured = provider.capture(captureOfAuth1);

    await expect(captured).rejects.toMatchObject({ code: 'malformed_response' });
  });

  test('when a 201 is not a movement, then refund throws malformed_response', async () => {
    const provider = await startFake(201, '{"id":"re_1"}');

    const refunded = provider.refund({ paymentId: 'ch_1', amountMinor: 5, idempotencyKey: 'k' });

    await expect(refunded).rejects.toMatchObject({ code: 'malformed_response' });
  });

  test('when the route is missing (404 not_found), then void throws request_rejected rather than refusing', async () => {
    const provider = await startFake(404, '{"error":{"code":"not_found"}}');

    const voided = provider.voidAuthorization({ authorizationId: 'auth_1', idempotencyKey: 'k' });

    await expect(voided).rejects.toMatchObject({ code: 'request_rejected' });
  });

  test('when a refusal comes with no error code, then capture throws request_rejected', async () => {
    const provider = await startFake(409, '<html>conflict</html>');

    const captured = provider.capture(captureOfAuth1);

    await expect(captured).rejects.toMatchObject({ code: 'request_rejected' });
  });

  test('when the provider answers 429 to a refund, then it is unavailable', async () => {
    const provider = await startFake(429, '{"error":{"code":"rate_limited"}}');

    const outcome = await provider.refund({
      paymentId: 'ch_1',
      amountMinor: 5,
      idempotencyKey: 'k',
    });

    expect(outcome).toEqual({
      kind: 'unavailable',
      message: 'the provider answered 429 (rate_limited)',
    });
  });

  test('when a movement lookup answers 503, then findMovement throws a transient error', async () => {
    const provider = await startFake(503, '{"error":{"code":"provider_unavailable"}}');

    const lookup = provider.findMovement('k');

    await expect(lookup).rejects.toThrow(
      'looking up a movement, the provider answered 503 (provider_unavailable)',
    );
    await expect(lookup).rejects.not.toBeInstanceOf(ProviderProtocolError);
  });

  test('when a movement lookup lists another key, then findMovement throws malformed_response', async () => {
    const other = {
      id: 'auth_1',
      kind: 'authorization',
      status: 'succeeded',
      amount: 5,
      currency: 'EUR',
      idempotencyKey: 'other',
    };
    const provider = await startFake(200, JSON.stringify({ data: [other] }));

    const lookup = provider.findMovement('k');

    await expect(lookup).rejects.toMatchObject({ code: 'malformed_response' });
  });
});

describe('authorize, capture, void and refund', () => {
  /** The movement of a `done` outcome; fails the test on any other. */
  async function done(outcome: Promise<MovementOutcome>): Promise<ProviderMovement> {
    const settled = await outcome;
    if (settled.kind !== 'done') throw new Error(`expected done, got ${JSON.stringify(settled)}`);
    return settled.movement;
  }

  async function start(options?: SandboxOptions) {
    const sandbox = await startSandbox(options);
    const provider = new SandboxProvider(sandbox.baseUrl, CLIENT_TIMEOUT_MS);
    const authorized = (token = 'tok_visa') => done(provider.authorize(chargeRequest({ token })));
    const charged = async (token = 'tok_visa') => {
      const outcome = await provider.charge(chargeRequest({ token }));
      if (outcome.kind !== 'approved') throw new Error(`expected approved, got ${outcome.kind}`);
      return outcome.charge;
    };
    return { sandbox, provider, authorized, charged };
  }

  const key = () => `op-${randomUUID()}`;

  async function movementsOf(sandbox: RunningServer): Promise<{ kind: string }[]> {
    const res = await fetch(`${sandbox.baseUrl}/movements`);
    return ((await res.json()) as { data: { kind: string }[] }).data;
  }

  test('when the card is good, then the authorization is done for the amount asked', async () => {
    const { provider } = await start();
    const req = chargeRequest({ amountMinor: 2500, currency: 'USD' });

    const outcome = await provider.authorize(req);

    expect(outcome).toEqual({
      kind: 'done',
      movement: {
        id: expect.stringMatching(/^auth_\w+$/) as unknown,
        kind: 'authorization',
        amountMinor: 2500,
        currency: 'USD',
        idempotencyKey: req.idempotencyKey,
      },
    });
  });

  test.each([
    ['tok_decline', 'insufficient_funds'],
    ['tok_invalid', 'invalid_token'],
  ])('when an authorization uses %s, then it is refused as %s', async (token, reason) => {
    const { provider } = await start();

    const outcome = await provider.authorize(chargeRequest({ token }));

    expect(outcome).toEqual({ kind: 'refused', reason });
  });

  test('when part of an authorization is captured, then the capture is done and a replay answers it again', async () => {
    const { provider, authorized } = await start();
    const auth = await authorized();
    const req = { authorizationId: auth.id, amountMinor: 1500, idempotencyKey: key() };

    const first = await provider.capture(req);
    const replay = await provider.capture(req);

    expect(first).toEqual({
      kind: 'done',
      movement: {
        id: expect.stringMatching(/^cap_\w+$/) as unknown,
        kind: 'capture',
        amountMinor: 1500,
        currency: 'EUR',
        idempotencyKey: req.idempotencyKey,
        parentId: auth.id,
      },
    });
    expect(replay).toEqual(first);
  });

  test('when a capture breaks the rules, then it is refused with the provider code', async () => {
    const { provider, authorized } = await start();
    const capture = (authorizationId: string, amountMinor: number) =>
      provider.capture({ authorizationId, amountMinor, idempotencyKey: key() });
    const auth = await authorized();
    const voided = await authorized();
    await done(provider.voidAuthorization({ authorizationId: voided.id, idempotencyKey: key() }));

    const over = await capture(auth.id, 2000);
    const unknown = await capture('auth_unknown', 1);
    const ofVoided = await capture(voided.id, 1);
    await done(capture(auth.id, 1999));
    const twice = await capture(auth.id, 1);

    expect([over, unknown, ofVoided, twice]).toEqual([
      { kind: 'refused', reason: 'amount_exceeds_authorized' },
      { kind: 'refused', reason: 'authorization_not_found' },
      { kind: 'refused', reason: 'authorization_voided' },
      { kind: 'refused', reason: 'authorization_already_captured' },
    ]);
  });

  test('when an authorization is voided, then the void releases all of it, and a void after a capture is refused', async () => {
    const { provider, authorized } = await start();
    const auth = await authorized();
    const captured = await authorized();
    await done(
      provider.capture({ authorizationId: captured.id, amountMinor: 1, idempotencyKey: key() }),
    );

    const voided = await provider.voidAuthorization({
      authorizationId: auth.id,
      idempotencyKey: 'void-1',
    });
    const late = await provider.voidAuthorization({
      authorizationId: captured.id,
      idempotencyKey: key(),
    });

    expect(voided).toEqual({
      kind: 'done',
      movement: {
        id: expect.stringMatching(/^void_\w+$/) as unknown,
        kind: 'void',
        amountMinor: 1999,
        currency: 'EUR',
        idempotencyKey: 'void-1',
        parentId: auth.id,
      },
    });
    expect(late).toEqual({ kind: 'refused', reason: 'authorization_already_captured' });
  });

  test('when a charge is refunded, then refunds are done up to its amount and refused past it', async () => {
    const { provider, charged } = await start();
    const charge = await charged();
    const refund = (paymentId: string, amountMinor: number) =>
      provider.refund({ paymentId, amountMinor, idempotencyKey: key() });

    const part = await refund(charge.id, 999);
    const over = await refund(charge.id, 1001);
    const unknown = await refund('ch_unknown', 1);

    expect(part).toEqual({
      kind: 'done',
      movement: expect.objectContaining({
        kind: 'refund',
        amountMinor: 999,
        parentId: charge.id,
      }) as unknown,
    });
    expect(over).toEqual({ kind: 'refused', reason: 'refund_exceeds_payment' });
    expect(unknown).toEqual({ kind: 'refused', reason: 'payment_not_found' });
  });

  test('when the payment token declines refunds, then the refund is refused as refund_declined', async () => {
    const { provider, charged } = await start();
    const charge = await charged('tok_refund_declined');

    const outcome = await provider.refund({
      paymentId: charge.id,
      amountMinor: 1,
      idempotencyKey: key(),
    });

    expect(outcome).toEqual({ kind: 'refused', reason: 'refund_declined' });
  });

  test('when captures are flaky twice, then two attempts are unavailable and the third captures once', async () => {
    const { sandbox, provider, authorized } = await start();
    const auth = await authorized('tok_capture_flaky_2');
    const req = { authorizationId: auth.id, amountMinor: 100, idempotencyKey: key() };

    const outcomes = [
      await provider.capture(req),
      await provider.capture(req),
      await provider.capture(req),
    ];

    expect(outcomes.map((o) => o.kind)).toEqual(['unavailable', 'unavailable', 'done']);
    expect(outcomes[0]).toEqual({
      kind: 'unavailable',
      message: expect.stringContaining('503') as unknown,
    });
    expect((await movementsOf(sandbox)).filter((m) => m.kind === 'capture')).toHaveLength(1);
  });

  test('when voids are down, then every attempt is unavailable', async () => {
    const { provider, authorized } = await start();
    const auth = await authorized('tok_void_down');
    const req = { authorizationId: auth.id, idempotencyKey: key() };

    const outcomes = [await provider.voidAuthorization(req), await provider.voidAuthorization(req)];

    expect(outcomes.map((o) => o.kind)).toEqual(['unavailable', 'unavailable']);
  });

  test('when a refund answer never comes in time, then the outcome is timeout and the refund is found by key', async () => {
    const { sandbox, charged } = await start({ timeoutAnswerMs: 60000 });
    const impatient = new SandboxProvider(sandbox.baseUrl, 200);
    const charge = await charged('tok_refund_timeout');
    const req = { paymentId: charge.id, amountMinor: 500, idempotencyKey: key() };

    const outcome = await impatient.refund(req);
    const found = await impatient.findMovement(req.idempotencyKey);
    const retried = await impatient.refund(req);

    expect(outcome).toEqual({ kind: 'timeout', message: 'no answer within 200 ms' });
    expect(found).toEqual({
      id: expect.stringMatching(/^re_/) as unknown,
      kind: 'refund',
      amountMinor: 500,
      currency: 'EUR',
      idempotencyKey: req.idempotencyKey,
      parentId: charge.id,
    });
    expect(retried).toEqual({ kind: 'done', movement: found });
  });

  test('when a key is reused for another capture amount, then capture throws idempotency_key_reused', async () => {
    const { provider, authorized } = await start();
    const auth = await authorized();
    const req = { authorizationId: auth.id, amountMinor: 100, idempotencyKey: key() };
    await done(provider.capture(req));

    const reuse = provider.capture({ ...req, amountMinor: 200 });

    await expect(reuse).rejects.toThrow(ProviderProtocolError);
    await expect(reuse).rejects.toMatchObject({ code: 'idempotency_key_reused' });
  });

  test('when a capture request is invalid, then capture throws request_rejected naming validation_failed', async () => {
    const { provider, authorized } = await start();
    const auth = await authorized();

    const rejected = provider.capture({
      authorizationId: auth.id,
      amountMinor: 1.5,
      idempotencyKey: key(),
    });

    await expect(rejected).rejects.toMatchObject({
      code: 'request_rejected',
      message: expect.stringContaining('400 (validation_failed)') as unknown,
    });
  });

  test('when movements are looked up, then a charge is found as kind charge and an unused key finds nothing', async () => {
    const { provider } = await start();
    const req = chargeRequest();
    await provider.charge(req);

    const charge = await provider.findMovement(req.idempotencyKey);
    const none = await provider.findMovement('never-used');

    expect(charge).toMatchObject({ kind: 'charge', amountMinor: 1999, currency: 'EUR' });
    expect(none).toBeUndefined();
  });
});

test('when the timeout is not a positive integer, then the adapter refuses to be built', () => {
  expect(() => new SandboxProvider('http://127.0.0.1:1', 0)).toThrow('positive integer');
});
