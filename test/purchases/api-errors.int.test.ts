import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { createApiApp } from '../../api/app';
import { createWorkflowStarter } from '../../api/purchases/starter';
import { listen } from '../../common/http';
import { createLogger } from '../../common/logger';
import type { Platform } from './harness';
import { createProduct, OTHER_MERCHANT_KEY, post, purchaseBody, startPlatform } from './harness';

let platform: Platform;
let productId: string;
beforeAll(async () => {
  platform = await startPlatform();
  productId = await createProduct(platform.prisma);
});
afterAll(() => platform.close());

const errorOf = (json: Record<string, unknown>) =>
  json.error as { code: string; message: string; details: unknown; requestId: string };

async function nothingStoredFor(key: string): Promise<void> {
  expect(await platform.prisma.purchase.count({ where: { idempotencyKey: key } })).toBe(0);
  expect(await platform.prisma.idempotencyKey.count({ where: { key } })).toBe(0);
}

test.each([
  ['a missing customerId', { customerId: undefined }, 'customerId'],
  ['a quantity of zero', { items: [{ productId: 'p', quantity: 0 }] }, 'items.0.quantity'],
  ['a quantity over 100', { items: [{ productId: 'p', quantity: 101 }] }, 'items.0.quantity'],
  ['a fractional quantity', { items: [{ productId: 'p', quantity: 1.5 }] }, 'items.0.quantity'],
  ['no items', { items: [] }, 'items'],
  ['51 items', { items: Array(51).fill({ productId: 'p', quantity: 1 }) }, 'items'],
  ['a currency that is not ISO 4217', { currency: 'XYZ' }, 'currency'],
  ['a lower-case currency', { currency: 'brl' }, 'currency'],
  ['a string quantity', { items: [{ productId: 'p', quantity: '2' }] }, 'items.0.quantity'],
  [
    'an unknown payment method',
    { paymentMethod: { type: 'pix', token: 't' } },
    'paymentMethod.type',
  ],
  ['an unknown field', { discount: 10 }, ''],
  [
    '21 metadata keys',
    { metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) },
    'metadata',
  ],
  ['a non-string metadata value', { metadata: { a: 1 } }, 'metadata.a'],
])(
  'when the body has %s, then 400 validation_failed names the path',
  async (_name, change, path) => {
    const key = randomUUID();

    const res = await post(platform, { ...purchaseBody(productId), ...change }, { key });

    expect(res.status).toBe(400);
    expect(errorOf(res.json).code).toBe('validation_failed');
    expect((errorOf(res.json).details as { path: string }[]).map((d) => d.path)).toContain(path);
    await nothingStoredFor(key);
  },
);

test('when the body is not valid JSON, then 400 malformed_json', async () => {
  const res = await post(platform, null, { raw: '{"customerId": ' });

  expect(res.status).toBe(400);
  expect(errorOf(res.json).code).toBe('malformed_json');
});

test('when the body is over 64 KB, then 413', async () => {
  const big = purchaseBody(productId, 'tok_visa', { metadata: { a: 'x'.repeat(70 * 1024) } });

  const res = await post(platform, big);

  expect(res.status).toBe(413);
  expect(errorOf(res.json).code).toBe('payload_too_large');
});

test('when the body is not JSON, then 415', async () => {
  const res = await post(platform, null, {
    raw: 'customerId=1',
    contentType: 'application/x-www-form-urlencoded',
  });

  expect(res.status).toBe(415);
  expect(errorOf(res.json).code).toBe('unsupported_media_type');
});

test.each([
  ['no API key', ''],
  ['an unknown API key', 'sk_test_nobody'],
  ['the admin key', 'sk_admin_local'],
])('when the request carries %s, then 401', async (_name, apiKey) => {
  const res = await post(platform, purchaseBody(productId), { apiKey });

  expect(res.status).toBe(401);
  expect(errorOf(res.json).code).toBe('unauthorized');
});

test.each([
  ['missing', null],
  ['empty', ''],
  ['too long', 'k'.repeat(256)],
  ['not printable ASCII', 'chave-ç'],
])('when the Idempotency-Key is %s, then 400 invalid_idempotency_key', async (_name, key) => {
  const res = await post(platform, purchaseBody(productId), { key });

  expect(res.status).toBe(400);
  expect(errorOf(res.json).code).toBe('invalid_idempotency_key');
});

test('when a product does not exist, then 422 unknown_product and nothing is stored', async () => {
  const key = randomUUID();
  const missing = randomUUID();

  const res = await post(platform, purchaseBody(missing), { key });

  expect(res.status).toBe(422);
  expect(errorOf(res.json)).toMatchObject({
    code: 'unknown_product',
    details: { productIds: [missing] },
  });
  await nothingStoredFor(key);
});

test('when the currency differs from the product, then 422 currency_mismatch', async () => {
  const res = await post(platform, { ...purchaseBody(productId), currency: 'USD' });

  expect(res.status).toBe(422);
  expect(errorOf(res.json).code).toBe('currency_mismatch');
});

test.each([
  ['as the token', { paymentMethod: { type: 'card_token', token: '4111111111111111' } }],
  ['with spaces in metadata', { metadata: { note: 'card 4111 1111 1111 1111' } }],
  ['as a number', { customerId: 4111111111111111 }],
])(
  'when a raw card number is sent %s, then 400 raw_card_data_rejected and nothing is stored',
  async (_name, change) => {
    const key = randomUUID();

    const res = await post(platform, { ...purchaseBody(productId), ...change }, { key });

    expect(res.status).toBe(400);
    expect(errorOf(res.json).code).toBe('raw_card_data_rejected');
    expect(JSON.stringify(res.json)).not.toContain('4111');
    await nothingStoredFor(key);
  },
);

test('when another merchant uses the same key, then each merchant gets its own purchase', async () => {
  const key = randomUUID();
  const body = purchaseBody(productId);

  const mine = await post(platform, body, { key });
  const theirs = await post(platform, body, { key, apiKey: OTHER_MERCHANT_KEY });

  expect([mine.status, theirs.status]).toEqual([202, 202]);
  expect(theirs.headers.get('idempotent-replayed')).toBeNull();
  expect(theirs.json.id).not.toBe(mine.json.id);
});

test('when Temporal is unreachable, then 503 with Retry-After, nothing is written, and a retry with the key succeeds', async () => {
  const key = randomUUID();
  const body = purchaseBody(productId);
  const connection = Connection.lazy({ address: '127.0.0.1:1' });
  const client = new Client({ connection });
  const config = { ...platform.config, TEMPORAL_START_TIMEOUT_MS: 1500 };
  const logger = createLogger('t', 'silent');
  const starter = createWorkflowStarter({
    prisma: platform.prisma,
    sql: platform.sql,
    workflows: client.workflow,
    connection,
    config,
    logger,
  });
  const broken = await listen(
    createApiApp({ ...platform, starter, config, logger, workflows: client.workflow }),
    0,
  );
  try {
    const res = await fetch(`http://127.0.0.1:${broken.port}/v1/purchases`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk_test_local',
        'idempotency-key': key,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    });

    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(errorOf((await res.json()) as Record<string, unknown>).code).toBe('service_unavailable');
    await nothingStoredFor(key);
  } finally {
    await broken.close();
    await starter.close();
    await connection.close();
  }

  const retry = await post(platform, body, { key });

  expect(retry.status).toBe(202);
  expect(retry.headers.get('idempotent-replayed')).toBeNull();
});
