import { randomUUID } from 'node:crypto';
import { createPrisma } from '../common/db';
import { listen } from '../common/http';
import { createLogger } from '../common/logger';
import { seedLocal } from '../ops/seed';
import { createProdutoApp } from '../produto/app';
import type { ProductView } from '../produto/catalog';
import { testConfig } from './config';

const prisma = createPrisma(testConfig.DATABASE_URL, 10);
const logger = createLogger('produto', testConfig.LOG_LEVEL);

const ADMIN = { authorization: 'Bearer sk_admin_local' };
const MERCHANT = { authorization: 'Bearer sk_test_local' };
const run = `it-produto-${randomUUID()}`;
let seq = 0;
const uniqueSku = (): string => `${run}-${++seq}`;

let base = '';
let stop: (() => Promise<void>) | undefined;

beforeAll(async () => {
  await seedLocal(prisma);
  const http = await listen(createProdutoApp({ prisma, logger }), 0);
  base = `http://127.0.0.1:${http.port}`;
  stop = http.close;
});

afterAll(async () => {
  await stop?.();
  await prisma.product.deleteMany({ where: { sku: { startsWith: run } } });
  await prisma.$disconnect();
});

interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

interface ErrorBody {
  error: { code: string; message: string; details: { path: string; message: string }[] | null };
}

async function call<T = unknown>(
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Reply<T>> {
  const payload =
    options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
    body: payload,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as T };
}

const validProduct = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  sku: uniqueSku(),
  name: 'Café torrado 250 g',
  description: 'Grãos do cerrado mineiro',
  priceMinor: 1999,
  currency: 'BRL',
  stock: 10,
  ...overrides,
});

async function createProduct(overrides: Record<string, unknown> = {}): Promise<ProductView> {
  const res = await call<ProductView>('POST', '/v1/products', {
    body: validProduct(overrides),
    headers: ADMIN,
  });
  expect(res.status).toBe(201);
  return res.body;
}

function without(input: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([k]) => !keys.includes(k)));
}

/** Each path the 400 names, once: one field may break several rules. */
const errorPaths = (body: ErrorBody): string[] => [
  ...new Set((body.error.details ?? []).map((d) => d.path)),
];

describe('POST /v1/products', () => {
  test('when an admin creates a product, then 201 with Location, ETag "1" and the product', async () => {
    const input = validProduct();

    const res = await call<ProductView>('POST', '/v1/products', { body: input, headers: ADMIN });

    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/v1/products/${res.body.id}`);
    expect(res.headers.get('etag')).toBe('"1"');
    expect(res.body).toEqual({
      ...input,
      id: res.body.id,
      active: true,
      version: 1,
      createdAt: res.body.createdAt,
      updatedAt: res.body.updatedAt,
    });
    expect(res.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(new Date(res.body.createdAt).toISOString()).toBe(res.body.createdAt);
    expect(Object.keys(res.body).sort()).toEqual(
      [
        'active',
        'createdAt',
        'currency',
        'description',
        'id',
        'name',
        'priceMinor',
        'sku',
        'stock',
        'updatedAt',
        'version',
      ].sort(),
    );
  });

  test('when description and active are left out, then they default to "" and true', async () => {
    const input = without(validProduct(), 'description');

    const res = await call<ProductView>('POST', '/v1/products', { body: input, headers: ADMIN });

    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ description: '', active: true });
  });

  test('when the sku is already taken, then 409 sku_taken', async () => {
    const first = await createProduct();

    const res = await call<ErrorBody>('POST', '/v1/products', {
      body: validProduct({ sku: first.sku }),
      headers: ADMIN,
    });

    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('sku_taken');
  });

  test('when the price is negative, then 400 validation_failed naming priceMinor', async () => {
    const res = await call<ErrorBody>('POST', '/v1/products', {
      body: validProduct({ priceMinor: -1 }),
      headers: ADMIN,
    });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(errorPaths(res.body)).toEqual(['priceMinor']);
  });

  test.each([
    ['a zero price', 'priceMinor', { priceMinor: 0 }],
    ['a fractional price', 'priceMinor', { priceMinor: 19.99 }],
    ['a price above 2_000_000_000', 'priceMinor', { priceMinor: 2_000_000_001 }],
    ['a price as a string', 'priceMinor', { priceMinor: '1999' }],
    ['a lower-case currency', 'currency', { currency: 'brl' }],
    ['an unknown currency', 'currency', { currency: 'XYZ' }],
    ['a negative stock', 'stock', { stock: -1 }],
    ['a fractional stock', 'stock', { stock: 1.5 }],
    ['an empty sku', 'sku', { sku: '' }],
    ['a sku with a space', 'sku', { sku: 'has space' }],
    ['a sku of 65 characters', 'sku', { sku: 'a'.repeat(65) }],
    ['an empty name', 'name', { name: '' }],
    ['a name of 201 characters', 'name', { name: 'n'.repeat(201) }],
    ['a description of 5001 characters', 'description', { description: 'd'.repeat(5001) }],
    ['a non-boolean active', 'active', { active: 'yes' }],
  ])('when the body has %s, then 400 naming %s', async (_case, path, overrides) => {
    const res = await call<ErrorBody>('POST', '/v1/products', {
      body: validProduct(overrides),
      headers: ADMIN,
    });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(errorPaths(res.body)).toEqual([path]);
  });

  test('when a required field is missing, then 400 naming it', async () => {
    const input = without(validProduct(), 'name', 'stock');

    const res = await call<ErrorBody>('POST', '/v1/products', { body: input, headers: ADMIN });

    expect(res.status).toBe(400);
    expect(errorPaths(res.body).sort()).toEqual(['name', 'stock']);
  });

  test('when the body has an unknown field, then 400 and nothing is created', async () => {
    const input = validProduct({ id: randomUUID() });

    const res = await call<ErrorBody>('POST', '/v1/products', { body: input, headers: ADMIN });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details?.[0]?.message).toMatch(/id/);
    expect(await prisma.product.count({ where: { sku: input.sku as string } })).toBe(0);
  });

  test('when the body is not valid JSON, then 400 malformed_json', async () => {
    const res = await call<ErrorBody>('POST', '/v1/products', { raw: '{"sku":', headers: ADMIN });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('malformed_json');
  });

  test('when the body is not JSON, then 415', async () => {
    const res = await call<ErrorBody>('POST', '/v1/products', {
      raw: 'sku=x',
      headers: { ...ADMIN, 'content-type': 'application/x-www-form-urlencoded' },
    });

    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe('unsupported_media_type');
  });

  test('when the body is larger than 64 kB, then 413', async () => {
    const res = await call<ErrorBody>('POST', '/v1/products', {
      body: validProduct({ description: 'd'.repeat(70 * 1024) }),
      headers: ADMIN,
    });

    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
  });

  test.each([
    ['no Authorization header', {}],
    ['an unknown key', { authorization: 'Bearer sk_admin_wrong' }],
    ['a key that is not a Bearer token', { authorization: 'sk_admin_local' }],
    ['a merchant key', MERCHANT],
  ])('when the request has %s, then 401 and nothing is created', async (_case, headers) => {
    const input = validProduct();

    const res = await call<ErrorBody>('POST', '/v1/products', { body: input, headers });

    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthorized');
    expect(await prisma.product.count({ where: { sku: input.sku as string } })).toBe(0);
  });
});

describe('GET /v1/products/:id', () => {
  test('when the product exists, then anyone may read it, with its ETag', async () => {
    const created = await createProduct();

    const res = await call<ProductView>('GET', `/v1/products/${created.id}`);

    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('"1"');
    expect(res.body).toEqual(created);
  });

  test('when the product does not exist, then 404 not_found', async () => {
    const res = await call<ErrorBody>('GET', `/v1/products/${randomUUID()}`);

    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });
});

describe('PATCH /v1/products/:id', () => {
  test('when If-Match is the current ETag, then 200 with the changes and the next ETag', async () => {
    const created = await createProduct();

    // DATETIME(3): a later write must land on a later millisecond to show a new updatedAt.
    await new Promise((r) => setTimeout(r, 5));

    const res = await call<ProductView>('PATCH', `/v1/products/${created.id}`, {
      body: { name: 'Café moído 500 g', priceMinor: 3490, stock: 0, active: false },
      headers: { ...ADMIN, 'if-match': '"1"' },
    });

    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('"2"');
    expect(res.body).toEqual({
      ...created,
      name: 'Café moído 500 g',
      priceMinor: 3490,
      stock: 0,
      active: false,
      version: 2,
      updatedAt: res.body.updatedAt,
    });
    expect(Date.parse(res.body.updatedAt)).toBeGreaterThan(Date.parse(created.updatedAt));
    const read = await call<ProductView>('GET', `/v1/products/${created.id}`);
    expect(read.body).toEqual(res.body);
  });

  test('when If-Match is missing, then 428 and the product is unchanged', async () => {
    const created = await createProduct();

    const res = await call<ErrorBody>('PATCH', `/v1/products/${created.id}`, {
      body: { name: 'changed' },
      headers: ADMIN,
    });

    expect(res.status).toBe(428);
    expect(res.body.error.code).toBe('precondition_required');
    expect((await call<ProductView>('GET', `/v1/products/${created.id}`)).body).toEqual(created);
  });

  test('when If-Match is stale, then 412 with the current ETag and the product is unchanged', async () => {
    const created = await createProduct();
    const first = await call('PATCH', `/v1/products/${created.id}`, {
      body: { stock: 5 },
      headers: { ...ADMIN, 'if-match': '"1"' },
    });
    expect(first.status).toBe(200);

    const res = await call<ErrorBody>('PATCH', `/v1/products/${created.id}`, {
      body: { stock: 99 },
      headers: { ...ADMIN, 'if-match': '"1"' },
    });

    expect(res.status).toBe(412);
    expect(res.body.error.code).toBe('precondition_failed');
    expect(res.headers.get('etag')).toBe('"2"');
    const read = await call<ProductView>('GET', `/v1/products/${created.id}`);
    expect(read.body).toMatchObject({ stock: 5, version: 2 });
  });

  test.each([['W/"1"'], ['*'], ['1'], ['"1", "2"']])(
    'when If-Match is %s, not one strong ETag, then 412',
    async (ifMatch) => {
      const created = await createProduct();

      const res = await call<ErrorBody>('PATCH', `/v1/products/${created.id}`, {
        body: { stock: 1 },
        headers: { ...ADMIN, 'if-match': ifMatch },
      });

      expect(res.status).toBe(412);
      expect(res.body.error.code).toBe('precondition_failed');
    },
  );

  test('when the product does not exist, then 404', async () => {
    const res = await call<ErrorBody>('PATCH', `/v1/products/${randomUUID()}`, {
      body: { stock: 1 },
      headers: { ...ADMIN, 'if-match': '"1"' },
    });

    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  test.each([
    ['the sku', { sku: 'new-sku' }],
    ['an unknown field', { color: 'red' }],
    ['no field at all', {}],
    ['a negative price', { priceMinor: -5 }],
    ['an unknown currency', { currency: 'ABC' }],
    ['a null name', { name: null }],
  ])('when the body changes %s, then 400 and the product is unchanged', async (_case, body) => {
    const created = await createProduct();

    const res = await call<ErrorBody>('PATCH', `/v1/products/${created.id}`, {
      body,
      headers: { ...ADMIN, 'if-match': '"1"' },
    });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details).not.toHaveLength(0);
    expect((await call<ProductView>('GET', `/v1/products/${created.id}`)).body).toEqual(created);
  });

  test('when a field is invalid, then the 400 names its path', async () => {
    const created = await createProduct();

    const res = await call<ErrorBody>('PATCH', `/v1/products/${created.id}`, {
      body: { priceMinor: -5, stock: 'many' },
      headers: { ...ADMIN, 'if-match': '"1"' },
    });

    expect(res.status).toBe(400);
    expect(errorPaths(res.body).sort()).toEqual(['priceMinor', 'stock']);
  });

  test.each([
    ['no key', {}],
    ['a merchant key', MERCHANT],
  ])('when the request has %s, then 401 and the product is unchanged', async (_case, headers) => {
    const created = await createProduct();

    const res = await call<ErrorBody>('PATCH', `/v1/products/${created.id}`, {
      body: { stock: 0 },
      headers: { ...headers, 'if-match': '"1"' },
    });

    expect(res.status).toBe(401);
    expect((await call<ProductView>('GET', `/v1/products/${created.id}`)).body).toEqual(created);
  });

  test('when several PATCHes race with the same If-Match, then exactly one wins and the rest get 412', async () => {
    const created = await createProduct();
    const writers = 8;

    const replies = await Promise.all(
      Array.from({ length: writers }, (_, i) =>
        call<ProductView | ErrorBody>('PATCH', `/v1/products/${created.id}`, {
          body: { stock: 100 + i },
          headers: { ...ADMIN, 'if-match': '"1"' },
        }),
      ),
    );

    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([200, ...Array<number>(writers - 1).fill(412)]);
    const winner = replies.find((r) => r.status === 200) as Reply<ProductView>;
    expect(winner.headers.get('etag')).toBe('"2"');
    const read = await call<ProductView>('GET', `/v1/products/${created.id}`);
    expect(read.body).toMatchObject({ version: 2, stock: winner.body.stock });
  });
});

describe('DELETE /v1/products/:id', () => {
  test('when no purchase references the product, then 204 and it is gone', async () => {
    const created = await createProduct();

    const res = await call('DELETE', `/v1/products/${created.id}`, { headers: ADMIN });

    expect(res.status).toBe(204);
    expect(res.body).toBeNull();
    expect((await call('GET', `/v1/products/${created.id}`)).status).toBe(404);
  });

  test('when a purchase references the product, then 200 and it is deactivated, not deleted', async () => {
    const created = await createProduct();
    const purchaseId = `pur_${randomUUID().replaceAll('-', '')}`;
    await prisma.purchase.create({
      data: {
        id: purchaseId,
        merchantId: 'm_local',
        customerId: 'c_it',
        idempotencyKey: purchaseId,
        workflowId: `purchase-${purchaseId}`,
        amountMinor: 1999n,
        currency: 'BRL',
        status: 'APPROVED',
      },
    });
    await prisma.purchaseItem.create({
      data: { purchaseId, line: 1, productId: created.id, quantity: 1, unitPriceMinor: 1999 },
    });

    try {
      const res = await call<{ deactivated: boolean; product: ProductView }>(
        'DELETE',
        `/v1/products/${created.id}`,
        { headers: ADMIN },
      );

      expect(res.status).toBe(200);
      expect(res.headers.get('etag')).toBe('"2"');
      expect(res.body).toEqual({
        deactivated: true,
        product: { ...created, active: false, version: 2, updatedAt: res.body.product.updatedAt },
      });
      const read = await call<ProductView>('GET', `/v1/products/${created.id}`);
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ active: false, version: 2 });
    } finally {
      await prisma.purchaseItem.deleteMany({ where: { purchaseId } });
      await prisma.purchase.deleteMany({ where: { id: purchaseId } });
    }
  });

  test('when the product does not exist, then 404', async () => {
    const res = await call<ErrorBody>('DELETE', `/v1/products/${randomUUID()}`, {
      headers: ADMIN,
    });

    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  test.each([
    ['no key', {}],
    ['a merchant key', MERCHANT],
  ])('when the request has %s, then 401 and the product stays', async (_case, headers) => {
    const created = await createProduct();

    const res = await call<ErrorBody>('DELETE', `/v1/products/${created.id}`, { headers });

    expect(res.status).toBe(401);
    expect((await call('GET', `/v1/products/${created.id}`)).status).toBe(200);
  });
});

describe('GET /v1/products', () => {
  test('when the catalog is walked page by page, then every product appears once, in id order', async () => {
    const created = await Promise.all([createProduct(), createProduct(), createProduct()]);

    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10_000; page++) {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const res = await call<{ data: ProductView[]; nextCursor: string | null }>(
        'GET',
        `/v1/products${query}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.map((p) => p.id));
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }

    expect(cursor).toBeNull();
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(seen.length);
    for (const product of created) expect(seen).toContain(product.id);
  });

  test('when no limit is given, then at most 20 products come back', async () => {
    await Promise.all(Array.from({ length: 21 }, () => createProduct()));

    const res = await call<{ data: ProductView[]; nextCursor: string | null }>(
      'GET',
      '/v1/products',
    );

    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(20);
    expect(res.body.nextCursor).toEqual(expect.any(String));
  });

  test.each([
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=1.5', 'limit'],
    ['cursor=not-a-cursor', 'cursor'],
    [`cursor=${Buffer.from("' OR 1=1 --").toString('base64url')}`, 'cursor'],
    ['limit=1&limit=2', 'limit'],
    ['sort=name', ''],
  ])('when the query is %s, then 400 naming "%s"', async (query, path) => {
    const res = await call<ErrorBody>('GET', `/v1/products?${query}`);

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(errorPaths(res.body)).toEqual([path]);
  });
});
