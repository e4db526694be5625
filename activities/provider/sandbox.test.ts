import { randomUUID } from 'node:crypto';
import { createHttpApp, listen } from '../../common/http';
import { createLogger } from '../../common/logger';
import type { SandboxOptions } from '../../provider-sandbox/app';
import { createSandboxApp } from '../../provider-sandbox/app';
import type { Charge } from '../../provider-sandbox/ledger';
import { SandboxProvider } from './sandbox';
import { ProviderProtocolError } from './types';
import type { ChargeRequest } from './types';

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
  async function startFake(status: number, body: string): Promise<SandboxProvider> {
    const app = createHttpApp(silent, (a) => {
      a.post('/charges', (_req, res) => {
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
});

test('when the timeout is not a positive integer, then the adapter refuses to be built', () => {
  expect(() => new SandboxProvider('http://127.0.0.1:1', 0)).toThrow('positive integer');
});
