import { randomUUID } from 'node:crypto';
import { eventually } from '../config';
import type { Platform } from './harness';
import {
  call,
  createProduct,
  OTHER_MERCHANT_KEY,
  post,
  purchaseBody,
  startPlatform,
} from './harness';
import { deadLettersFor, finalState, movementsOf, netOf, opsCli, stockOf } from './helpers';

/*
 * The payment lifecycle on the real stack: manual capture, partial capture, void, refunds
 * with their races, and the bad inputs of each new endpoint. The sandbox's movements are
 * the ledger every case checks the money against.
 */
let platform: Platform;
beforeAll(async () => {
  // Short retries, so a refund's run out within a test.
  platform = await startPlatform({
    PAYMENT_RETRY_INITIAL_MS: '100',
    PAYMENT_RETRY_MAX_ATTEMPTS: '2',
  });
});
afterAll(() => platform.close());

const PRICE = 2500;
const AMOUNT = PRICE * 2; // purchaseBody buys two

async function authorized(token = 'tok_visa', stock = 10) {
  const productId = await createProduct(platform.prisma, { priceMinor: PRICE, stock });
  const res = await post(platform, purchaseBody(productId, token, { captureMethod: 'manual' }));
  expect(res.status).toBe(202);
  const id = res.json.id as string;
  await finalState(platform, id, ['AUTHORIZED']);
  return { id, productId };
}

async function approved(token = 'tok_visa') {
  const productId = await createProduct(platform.prisma, { priceMinor: PRICE, stock: 10 });
  const res = await post(platform, purchaseBody(productId, token));
  const id = res.json.id as string;
  await finalState(platform, id, ['APPROVED']);
  return { id, productId };
}

const capture = (id: string, body: unknown = {}, key?: string) =>
  call(platform, 'POST', `/v1/purchases/${id}/capture`, body, { key });
const voidOf = (id: string, key?: string) =>
  call(platform, 'POST', `/v1/purchases/${id}/void`, {}, { key });
const refund = (id: string, body: unknown = {}, key?: string) =>
  call(platform, 'POST', `/v1/purchases/${id}/refunds`, body, { key });

async function refundSettled(refundId: string): Promise<Record<string, unknown>> {
  return eventually(async () => {
    const { json } = await call(platform, 'GET', `/v1/refunds/${refundId}`);
    return json.status === 'PENDING' ? undefined : json;
  }, 60_000);
}

describe('manual capture', () => {
  test('when a manual purchase is captured, then it is authorized first, captured once, and a replay of the capture answers the same', async () => {
    const { id, productId } = await authorized();
    expect(await stockOf(platform, productId)).toBe(8);
    expect((await movementsOf(platform, id)).map((m) => m.kind)).toEqual(['authorization']);

    const key = randomUUID();
    const first = await capture(id, {}, key);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ status: 'APPROVED', amountCaptured: AMOUNT });
    const again = await capture(id, {}, key);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');

    const movements = await movementsOf(platform, id);
    expect(movements.map((m) => m.kind)).toEqual(['authorization', 'capture']);
    expect(netOf(movements)).toBe(AMOUNT);
    expect(await stockOf(platform, productId)).toBe(8);

    const other = await capture(id, {}, randomUUID());
    expect(other.status).toBe(409);
    expect(other.json).toMatchObject({ error: { code: 'invalid_state' } });
  });

  test('when part of an authorization is captured, then only that part moves', async () => {
    const { id } = await authorized();
    const over = await capture(id, { amount: AMOUNT + 1 });
    expect(over.status).toBe(422);
    expect(over.json).toMatchObject({ error: { code: 'amount_exceeds_authorized' } });

    const res = await capture(id, { amount: 3000 });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'APPROVED', amount: AMOUNT, amountCaptured: 3000 });
    expect(netOf(await movementsOf(platform, id))).toBe(3000);
  });

  test('when an authorization is voided, then the stock comes back and nothing is captured', async () => {
    const { id, productId } = await authorized();
    const res = await voidOf(id);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'VOIDED' });
    expect(await stockOf(platform, productId)).toBe(10);
    const movements = await movementsOf(platform, id);
    expect(movements.map((m) => m.kind)).toEqual(['authorization', 'void']);
    expect(netOf(movements)).toBe(0);

    const late = await capture(id);
    expect(late.status).toBe(409);
    expect(late.json).toMatchObject({
      error: { code: 'invalid_state', details: { status: 'VOIDED' } },
    });
  });

  test('when the provider refuses a capture, then the purchase stays authorized and can still be voided', async () => {
    const { id } = await authorized('tok_capture_declined');
    const res = await capture(id);
    expect(res.status).toBe(402);
    expect(res.json).toMatchObject({
      error: {
        code: 'capture_refused',
        details: { reason: 'capture_declined', status: 'AUTHORIZED' },
      },
    });
    expect((await voidOf(id)).json).toMatchObject({ status: 'VOIDED' });
    expect(netOf(await movementsOf(platform, id))).toBe(0);
  });

  test('when a capture and a void race, then one wins, the other gets 409, and the ledger agrees', async () => {
    const { id } = await authorized();
    const [c, v] = await Promise.all([capture(id), voidOf(id)]);
    expect([c.status, v.status].sort()).toEqual([200, 409]);
    const kinds = (await movementsOf(platform, id)).map((m) => m.kind);
    const winner = c.status === 200 ? 'capture' : 'void';
    expect(kinds).toEqual(['authorization', winner]);
    const { json } = await call(platform, 'GET', `/v1/purchases/${id}`);
    expect(json.status).toBe(winner === 'capture' ? 'APPROVED' : 'VOIDED');
  });
});

describe('refunds', () => {
  test('when a purchase is refunded in two parts, then it becomes partially refunded, then refunded, and the net is zero', async () => {
    const { id } = await approved();
    const first = await refund(id, { amount: 2000, reason: 'damaged' });
    expect(first.status).toBe(202);
    expect(first.json).toMatchObject({ status: 'PENDING', amount: 2000, purchaseId: id });
    expect(await refundSettled(first.json.id as string)).toMatchObject({ status: 'SUCCEEDED' });
    const partly = await finalState(platform, id, ['PARTIALLY_REFUNDED']);
    expect(partly.amountRefunded).toBe(2000);

    const rest = await refund(id);
    expect(rest.json).toMatchObject({ amount: AMOUNT - 2000 });
    await refundSettled(rest.json.id as string);
    const done = await finalState(platform, id, ['REFUNDED']);
    expect(done.amountRefunded).toBe(AMOUNT);
    expect(netOf(await movementsOf(platform, id))).toBe(0);

    const list = await call(platform, 'GET', `/v1/purchases/${id}/refunds`);
    expect((list.json.data as { id: string }[]).map((r) => r.id)).toEqual([
      first.json.id,
      rest.json.id,
    ]);
    const more = await refund(id, { amount: 1 });
    expect(more.status).toBe(409);
  });

  test('when two refunds together exceed the captured amount, then exactly one is accepted', async () => {
    const { id } = await approved();
    const answers = await Promise.all([refund(id, { amount: 3000 }), refund(id, { amount: 3000 })]);
    expect(answers.map((a) => a.status).sort()).toEqual([202, 422]);
    const refused = answers.find((a) => a.status === 422)!;
    expect(refused.json).toMatchObject({
      error: { code: 'refund_exceeds_captured', details: { refundable: AMOUNT - 3000 } },
    });
    const accepted = answers.find((a) => a.status === 202)!;
    await refundSettled(accepted.json.id as string);
    expect(netOf(await movementsOf(platform, id))).toBe(AMOUNT - 3000);
  });

  test('when a refund asks to restock, then the stock comes back once', async () => {
    const { id, productId } = await approved();
    expect(await stockOf(platform, productId)).toBe(8);
    const res = await refund(id, { restock: true });
    await refundSettled(res.json.id as string);
    expect(await stockOf(platform, productId)).toBe(10);
  });

  test('when a refund is sent again with its key, then it is the same refund; with another body it is refused', async () => {
    const { id } = await approved();
    const key = randomUUID();
    const first = await refund(id, { amount: 1000 }, key);
    const again = await refund(id, { amount: 1000 }, key);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.id).toBe(first.json.id);
    const changed = await refund(id, { amount: 1001 }, key);
    expect(changed.status).toBe(422);
    expect(changed.json).toMatchObject({ error: { code: 'idempotency_key_reused' } });
    await refundSettled(first.json.id as string);
    expect((await movementsOf(platform, id)).filter((m) => m.kind === 'refund')).toHaveLength(1);
  });

  test('when the provider declines a refund, then the refund fails and the purchase keeps its money', async () => {
    const { id } = await approved('tok_refund_declined');
    const res = await refund(id);
    expect(await refundSettled(res.json.id as string)).toMatchObject({
      status: 'FAILED',
      failure: 'refund_declined',
    });
    const { json } = await call(platform, 'GET', `/v1/purchases/${id}`);
    expect(json).toMatchObject({ status: 'APPROVED', amountRefunded: 0 });
    expect(netOf(await movementsOf(platform, id))).toBe(AMOUNT);
  });
});

describe('a refund whose retries run out', () => {
  test('when the provider stays down past the retries, then the refund is parked and dead-lettered, and an operator retry refunds once', async () => {
    // Two failures exhaust the retries; the third attempt under the same key succeeds.
    const { id } = await approved('tok_refund_flaky_2');
    const res = await refund(id, { amount: 1000 });
    const refundId = res.json.id as string;
    const parked = await refundSettled(refundId);
    expect(parked).toMatchObject({ status: 'FAILED' });
    expect(await platform.prisma.refund.findUnique({ where: { id: refundId } })).toMatchObject({
      parked: true,
    });
    const letters = await eventually(async () => {
      const found = (await deadLettersFor(platform, id)).filter((l) => l.type === 'refund.failed');
      return found.length > 0 ? found : undefined;
    });
    expect(letters[0]?.data).toMatchObject({ refundId, reason: 'retries_exhausted' });
    // Still holding its amount while parked: only the rest can be refunded.
    expect((await refund(id, { amount: AMOUNT - 999 })).status).toBe(422);

    await opsCli('dlq', 'retry', refundId, '--operator', 'ops@example');

    await finalState(platform, id, ['PARTIALLY_REFUNDED']);
    expect((await call(platform, 'GET', `/v1/refunds/${refundId}`)).json.status).toBe('SUCCEEDED');
    expect((await movementsOf(platform, id)).filter((m) => m.kind === 'refund')).toHaveLength(1);
  });
});

describe('bad inputs of the lifecycle endpoints', () => {
  test('when a capture, void or refund is malformed, on the wrong state or of another merchant, then it gets a 4xx with a stable code', async () => {
    const { id } = await approved();
    const cases: [Promise<{ status: number; json: Record<string, unknown> }>, number, string][] = [
      [capture(id), 409, 'invalid_state'],
      [voidOf(id), 409, 'invalid_state'],
      [capture(id, { amount: -5 }), 400, 'validation_failed'],
      [capture(id, { amount: 1.5 }), 400, 'validation_failed'],
      [capture(id, { amount: 10, extra: true }), 400, 'validation_failed'],
      [refund(id, { amount: '10' }), 400, 'validation_failed'],
      [refund(id, { restock: 'yes' }), 400, 'validation_failed'],
      [refund(id, { amount: AMOUNT + 1 }), 422, 'refund_exceeds_captured'],
      [refund(id, {}, ''), 400, 'invalid_idempotency_key'],
      [
        call(platform, 'POST', `/v1/purchases/${id}/refunds`, {}, { key: null }),
        400,
        'invalid_idempotency_key',
      ],
      [
        call(platform, 'POST', `/v1/purchases/${id}/refunds`, {}, { apiKey: OTHER_MERCHANT_KEY }),
        404,
        'not_found',
      ],
      [
        call(platform, 'POST', `/v1/purchases/${id}/capture`, {}, { apiKey: OTHER_MERCHANT_KEY }),
        404,
        'not_found',
      ],
      [capture('pur_nope'), 400, 'invalid_purchase_id'],
      [call(platform, 'GET', '/v1/refunds/re_nope'), 400, 'invalid_refund_id'],
      [call(platform, 'GET', `/v1/refunds/re_${'0'.repeat(32)}`), 404, 'not_found'],
      [
        call(platform, 'GET', `/v1/purchases/${id}/refunds`, undefined, {
          apiKey: OTHER_MERCHANT_KEY,
        }),
        404,
        'not_found',
      ],
      [
        call(platform, 'POST', `/v1/purchases/${id}/refunds`, undefined, { raw: '{"amount":' }),
        400,
        'malformed_json',
      ],
    ];
    for (const [answer, status, code] of cases) {
      const res = await answer;
      expect({ status: res.status, code: (res.json.error as { code: string }).code }).toEqual({
        status,
        code,
      });
    }
    const { json } = await call(platform, 'GET', `/v1/purchases/${id}`);
    expect(json).toMatchObject({ status: 'APPROVED', amountRefunded: 0 });
    expect(await platform.prisma.refund.count({ where: { purchaseId: id } })).toBe(0);
  });

  test('when a refund of another merchant is read, then it is not found', async () => {
    const { id } = await approved();
    const res = await refund(id, { amount: 100 });
    const theirs = await call(platform, 'GET', `/v1/refunds/${String(res.json.id)}`, undefined, {
      apiKey: OTHER_MERCHANT_KEY,
    });
    expect(theirs.status).toBe(404);
    await refundSettled(res.json.id as string);
  });
});
