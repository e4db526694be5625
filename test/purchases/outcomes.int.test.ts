import { randomUUID } from 'node:crypto';
import { createPurchaseBody } from '../../api/purchases/request';
import { eventually } from '../config';
import type { Platform } from './harness';
import { createProduct, getPurchase, post, purchaseBody, startPlatform } from './harness';
import { chargesFor, deadLettersFor, finalState, opsCli, stockOf, timelineOf } from './helpers';

const FINAL = ['APPROVED', 'DECLINED', 'REJECTED', 'DUPLICATE', 'FAILED', 'CANCELED'];

let platform: Platform;
beforeAll(async () => {
  platform = await startPlatform();
});
afterAll(() => platform.close());

test('when a purchase of a tok_visa card is made, then it is approved with one charge and stock taken', async () => {
  const productId = await createProduct(platform.prisma, { priceMinor: 2500, stock: 10 });

  const res = await post(platform, purchaseBody(productId));

  expect(res.status).toBe(202);
  expect(res.json).toMatchObject({ status: 'RECEIVED', amount: 5000, currency: 'BRL' });
  expect(res.headers.get('location')).toBe(`/v1/purchases/${String(res.json.id)}`);
  const done = await finalState(platform, res.json.id as string, FINAL);
  expect(done.status).toBe('APPROVED');
  expect(timelineOf(done)).toEqual(['RECEIVED', 'PROCESSING', 'APPROVED']);
  expect(await chargesFor(platform, res.json.id as string)).toHaveLength(1);
  expect(await stockOf(platform, productId)).toBe(8);
  const query = `PurchaseId = "${String(res.json.id)}" AND PurchaseStatus = "APPROVED" AND AmountMinor = 5000`;
  // Visibility is eventually consistent: the upserted attributes show up a moment later.
  const listed = await eventually(async () => {
    const { count } = await platform.client.workflow.count(query);
    return count === 1 ? count : undefined;
  });
  expect(listed).toBe(1);
});

test('when the same key is replayed with the same body, then the same purchase comes back marked replayed', async () => {
  const productId = await createProduct(platform.prisma);
  const key = randomUUID();
  const metadata = { orderRef: 'A-1' };
  const body = purchaseBody(productId, 'tok_visa', { metadata });
  const first = await post(platform, body, { key });
  const settled = await finalState(platform, first.json.id as string, FINAL);
  delete settled.timeline;

  // Key order differs; the canonical form is what counts.
  const reordered = {
    metadata,
    paymentMethod: body.paymentMethod,
    currency: body.currency,
    items: body.items,
    customerId: body.customerId,
  };
  const replay = await post(platform, reordered, { key });

  expect(replay.status).toBe(202);
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  expect(replay.json.id).toBe(first.json.id);
  expect(replay.json.status).toBe('APPROVED');
  // The replay's one-query read shows exactly what GET shows.
  expect(replay.json).toEqual(settled);
  expect(replay.json.metadata).toEqual(metadata);
  expect(await chargesFor(platform, first.json.id as string)).toHaveLength(1);
});

test('when 50 identical requests arrive at once, then there is one purchase, one workflow and one charge', async () => {
  const productId = await createProduct(platform.prisma, { stock: 100 });
  const key = randomUUID();
  const body = purchaseBody(productId);

  const responses = await Promise.all(
    Array.from({ length: 50 }, () => post(platform, body, { key })),
  );

  expect(responses.map((r) => r.status)).toEqual(Array(50).fill(202));
  const ids = new Set(responses.map((r) => r.json.id));
  expect(ids.size).toBe(1);
  const [id] = [...ids] as string[];
  await finalState(platform, id!, FINAL);
  expect(await platform.prisma.purchase.count({ where: { idempotencyKey: key } })).toBe(1);
  const { count } = await platform.client.workflow.count(`PurchaseId = "${id}"`);
  expect(count).toBe(1);
  expect(await chargesFor(platform, id!)).toHaveLength(1);
  expect(await stockOf(platform, productId)).toBe(98);
});

test('when the same key is replayed with another body, then 422 names the original purchase', async () => {
  const productId = await createProduct(platform.prisma);
  const key = randomUUID();
  const first = await post(platform, purchaseBody(productId), { key });

  const other = await post(platform, purchaseBody(productId), { key });

  expect(other.status).toBe(422);
  expect(other.json.error).toMatchObject({
    code: 'idempotency_key_reused',
    details: { purchaseId: first.json.id },
  });
});

test('when the same basket is bought again under a new key inside the window, then it ends DUPLICATE uncharged', async () => {
  const productId = await createProduct(platform.prisma);
  const body = purchaseBody(productId);
  const first = await post(platform, body);
  await finalState(platform, first.json.id as string, FINAL);

  const second = await post(platform, body);
  const done = await finalState(platform, second.json.id as string, FINAL);

  expect(done).toMatchObject({ status: 'DUPLICATE', duplicateOf: first.json.id });
  expect(await chargesFor(platform, second.json.id as string)).toHaveLength(0);
});

test('when stock is short, then the purchase is REJECTED out_of_stock and nothing is charged', async () => {
  const productId = await createProduct(platform.prisma, { stock: 1 });

  const res = await post(platform, purchaseBody(productId));
  const done = await finalState(platform, res.json.id as string, FINAL);

  expect(done).toMatchObject({ status: 'REJECTED', reason: 'out_of_stock' });
  expect(await chargesFor(platform, res.json.id as string)).toHaveLength(0);
  expect(await stockOf(platform, productId)).toBe(1);
});

test('when the card is declined, then the purchase is DECLINED and its stock is released', async () => {
  const productId = await createProduct(platform.prisma, { stock: 5 });

  const res = await post(platform, purchaseBody(productId, 'tok_decline'));
  const done = await finalState(platform, res.json.id as string, FINAL);

  expect(done).toMatchObject({ status: 'DECLINED', reason: 'insufficient_funds' });
  expect(timelineOf(done)).toEqual(['RECEIVED', 'PROCESSING', 'DECLINED']);
  expect(await stockOf(platform, productId)).toBe(5);
  expect(await chargesFor(platform, res.json.id as string)).toHaveLength(0);
});

test('when the provider fails twice then answers, then the purchase is APPROVED with one charge', async () => {
  const productId = await createProduct(platform.prisma);

  const res = await post(platform, purchaseBody(productId, 'tok_flaky_2'));
  const done = await finalState(platform, res.json.id as string, FINAL);

  expect(done).toMatchObject({ status: 'APPROVED', attempts: 3 });
  expect(await chargesFor(platform, res.json.id as string)).toHaveLength(1);
});

test('when the provider charges but answers too late, then reconciliation approves with one charge', async () => {
  const productId = await createProduct(platform.prisma);

  const res = await post(platform, purchaseBody(productId, 'tok_timeout'));
  const done = await finalState(platform, res.json.id as string, FINAL);

  expect(done.status).toBe('APPROVED');
  expect(await chargesFor(platform, res.json.id as string)).toHaveLength(1);
});

test('when the provider is down, then the purchase is FAILED with a DLQ message, and an operator retry approves it', async () => {
  const productId = await createProduct(platform.prisma, { stock: 5 });
  await platform.stopSandbox();
  let id = '';
  try {
    const res = await post(platform, purchaseBody(productId));
    id = res.json.id as string;
    const failed = await finalState(platform, id, FINAL);
    expect(failed).toMatchObject({ status: 'FAILED', attempts: 4 });
    expect(await stockOf(platform, productId)).toBe(3);
  } finally {
    await platform.startSandbox();
  }
  // FAILED is recorded just before the dead letter is published.
  const letter = await eventually(async () => (await deadLettersFor(platform, id))[0], 30000);
  expect(letter).toMatchObject({
    type: 'payment.failed',
    purchaseId: id,
    data: { attempts: 4, lastFailure: { type: 'ProviderUnavailable' } },
  });
  expect(JSON.stringify(letter)).not.toContain('tok_visa');

  expect(await opsCli('dlq', 'list')).toContain(id);
  await opsCli('dlq', 'retry', id);
  const done = await finalState(platform, id, ['APPROVED']);

  expect(timelineOf(done)).toEqual(['RECEIVED', 'PROCESSING', 'FAILED', 'PROCESSING', 'APPROVED']);
  expect(await chargesFor(platform, id)).toHaveLength(1);
});

test('when an operator cancels a FAILED purchase, then it is CANCELED and its stock released', async () => {
  const productId = await createProduct(platform.prisma, { stock: 5 });
  const res = await post(platform, purchaseBody(productId, 'tok_down'));
  const id = res.json.id as string;
  await finalState(platform, id, ['FAILED']);
  expect(await stockOf(platform, productId)).toBe(3);

  await opsCli('dlq', 'cancel', id);
  const done = await finalState(platform, id, ['CANCELED']);

  expect(done.reason).toBe('canceled_by_operator');
  expect(await stockOf(platform, productId)).toBe(5);
  expect(await chargesFor(platform, id)).toHaveLength(0);
});

test('when another merchant asks for a purchase, then it is not found', async () => {
  const productId = await createProduct(platform.prisma);
  const res = await post(platform, purchaseBody(productId));

  const foreign = await getPurchase(platform, res.json.id as string, 'sk_test_other');

  expect(foreign.status).toBe(404);
  expect(foreign.json.error).toMatchObject({ code: 'not_found' });
});

test('the request schema accepts the body the tests send', () => {
  expect(createPurchaseBody.safeParse(purchaseBody(randomUUID())).success).toBe(true);
});

test('when a merchant lists purchases by customer and status, then pages follow the cursor newest first', async () => {
  const productId = await createProduct(platform.prisma);
  const customerId = `cus_${randomUUID()}`;
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const body = {
      ...purchaseBody(productId),
      customerId,
      items: [{ productId, quantity: i + 1 }],
    };
    ids.push((await post(platform, body)).json.id as string);
  }
  await Promise.all(ids.map((id) => finalState(platform, id, FINAL)));
  const list = async (query: string, key = 'sk_test_local') => {
    const res = await fetch(`${platform.apiUrl}/v1/purchases?${query}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    return {
      status: res.status,
      json: (await res.json()) as { data: { id: string }[]; nextCursor: string | null },
    };
  };

  const first = await list(`customerId=${customerId}&status=APPROVED&limit=2`);
  const second = await list(
    `customerId=${customerId}&status=APPROVED&limit=2&cursor=${String(first.json.nextCursor)}`,
  );
  const foreign = await list(`customerId=${customerId}`, 'sk_test_other');
  const bad = await list('status=PAID');

  expect([...first.json.data, ...second.json.data].map((p) => p.id)).toEqual([...ids].reverse());
  expect(second.json.nextCursor).toBeNull();
  expect(foreign.json.data).toEqual([]);
  expect(bad.status).toBe(400);
});

test('when 100 purchases with neighbouring keys arrive at once, then every one is accepted', async () => {
  const productId = await createProduct(platform.prisma);
  const run = randomUUID().slice(0, 8);

  const responses = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      post(
        platform,
        { ...purchaseBody(productId), customerId: `cus_${run}_${i}` },
        { key: `order-${run}-${i}` },
      ),
    ),
  );

  expect(responses.map((r) => r.status)).toEqual(Array(100).fill(202));
  expect(new Set(responses.map((r) => r.json.id)).size).toBe(100);
});
