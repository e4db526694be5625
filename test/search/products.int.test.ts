import { randomUUID } from 'node:crypto';
import { listen } from '../../common/http';
import { createLogger } from '../../common/logger';
import { createProdutoApp } from '../../produto/app';
import type { ProductView } from '../../produto/catalog';
import type { ProductDoc } from '../../search/documents';
import { eventually, testConfig } from '../config';
import { startPipeline, uniqueWord } from './harness';
import type { Pipeline } from './harness';

const ADMIN = { authorization: 'Bearer sk_admin_local', 'content-type': 'application/json' };
const run = `it-search-${randomUUID()}`;
let seq = 0;
let pipeline: Pipeline;
let base = '';
let stopHttp: (() => Promise<void>) | undefined;

beforeAll(async () => {
  pipeline = await startPipeline();
  await pipeline.startIndexer();
  const logger = createLogger('produto', testConfig.LOG_LEVEL);
  const app = createProdutoApp({ prisma: pipeline.prisma, logger, search: pipeline.engine });
  const http = await listen(app, 0);
  base = `http://127.0.0.1:${http.port}`;
  stopHttp = http.close;
});

afterAll(async () => {
  await stopHttp?.();
  await pipeline.prisma.product.deleteMany({ where: { sku: { startsWith: run } } });
  await pipeline.close();
});

interface SearchPage {
  data: ProductDoc[];
  nextCursor: string | null;
}

async function search(
  query: Record<string, string>,
): Promise<{ status: number; body: SearchPage }> {
  const res = await fetch(`${base}/v1/products/search?${new URLSearchParams(query).toString()}`);
  return { status: res.status, body: (await res.json()) as SearchPage };
}

async function createProduct(fields: Record<string, unknown>): Promise<ProductView> {
  const res = await fetch(`${base}/v1/products`, {
    method: 'POST',
    headers: ADMIN,
    body: JSON.stringify({
      sku: `${run}-${++seq}`,
      description: '',
      priceMinor: 1990,
      currency: 'BRL',
      stock: 5,
      ...fields,
    }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as ProductView;
}

async function patch(id: string, version: number, body: object): Promise<ProductView> {
  const res = await fetch(`${base}/v1/products/${id}`, {
    method: 'PATCH',
    headers: { ...ADMIN, 'if-match': `"${version}"` },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as ProductView;
}

/** Polls the search endpoint until `accept` holds for the ids it returns. */
function searchUntil(
  query: Record<string, string>,
  accept: (page: SearchPage) => boolean,
  timeoutMs = 30000,
): Promise<SearchPage> {
  return eventually(async () => {
    const res = await search(query);
    return res.status === 200 && accept(res.body) ? res.body : undefined;
  }, timeoutMs);
}

const ids = (page: SearchPage): string[] => page.data.map((d) => d.id);
const cursorOf = (values: unknown[]): string =>
  Buffer.from(JSON.stringify(values)).toString('base64url');

describe('products: MySQL -> Debezium -> Kafka -> indexer -> OpenSearch', () => {
  test('when a product is created, updated and deleted, then search follows each change', async () => {
    const first = uniqueWord();
    const second = uniqueWord();
    const created = await createProduct({ name: `Chá ${first}`, priceMinor: 1500 });

    const found = await searchUntil({ q: first }, (p) => ids(p).includes(created.id));
    expect(found.data).toEqual([
      expect.objectContaining({ id: created.id, version: 1, priceMinor: 1500 }),
    ]);

    await patch(created.id, 1, { name: `Chá ${second}`, priceMinor: 1700 });
    await searchUntil({ q: second }, (p) =>
      p.data.some((d) => d.id === created.id && d.version === 2),
    );
    expect(ids((await search({ q: first })).body)).toEqual([]);

    const del = await fetch(`${base}/v1/products/${created.id}`, {
      method: 'DELETE',
      headers: ADMIN,
    });
    expect(del.status).toBe(204);
    await searchUntil({ q: second }, (p) => p.data.length === 0);
  });

  test('when text has accents, then it is found with and without them, in singular and plural', async () => {
    const word = uniqueWord();
    const product = await createProduct({
      name: `Café açúcar ${word}`,
      description: 'Pães de queijo e limões',
    });

    for (const q of [
      `cafe ${word}`,
      `cafés ${word}`,
      `CAFÉ ${word}`,
      `acucar ${word}`,
      `${word} pao`,
      `${word} limoes`,
    ]) {
      const page = await searchUntil({ q }, (p) => p.data.length > 0);
      expect({ q, ids: ids(page) }).toEqual({ q, ids: [product.id] });
    }
  });

  test('when one product gets 200 rapid updates, then the index ends on the last version', async () => {
    const word = uniqueWord();
    let product = await createProduct({ name: `Moedor ${word}`, stock: 0 });

    for (let i = 1; i <= 200; i++) product = await patch(product.id, product.version, { stock: i });
    expect(product.version).toBe(201);

    const page = await searchUntil({ q: word }, (p) => p.data[0]?.version === 201, 60000);
    expect(page.data).toEqual([
      expect.objectContaining({ id: product.id, version: 201, stock: 200 }),
    ]);
  });

  test('when filters are given, then only matching active products come back, page by page', async () => {
    const word = uniqueWord();
    const cheap = await createProduct({ name: `Caneca ${word}`, priceMinor: 1000, stock: 0 });
    const mid = await createProduct({ name: `Caneca ${word}`, priceMinor: 2000, stock: 3 });
    const dear = await createProduct({ name: `Caneca ${word}`, priceMinor: 3000, stock: 3 });
    const usd = await createProduct({ name: `Caneca ${word}`, priceMinor: 2000, currency: 'USD' });
    const inactive = await createProduct({
      name: `Caneca ${word}`,
      priceMinor: 2000,
      active: false,
    });
    await searchUntil({ q: word }, (p) => p.data.length === 4);

    const inRange = await search({ q: word, minPrice: '1500', maxPrice: '3000', currency: 'BRL' });
    expect(ids(inRange.body).sort()).toEqual([mid.id, dear.id].sort());
    expect(ids((await search({ q: word, inStock: 'false' })).body)).toEqual([cheap.id]);
    expect(ids((await search({ q: word, inStock: 'true', currency: 'USD' })).body)).toEqual([
      usd.id,
    ]);
    expect(ids((await search({ q: word })).body)).not.toContain(inactive.id);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: SearchPage } = await search({
        q: word,
        limit: '1',
        ...(cursor && { cursor }),
      });
      expect(res.status).toBe(200);
      seen.push(...ids(res.body));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual([cheap.id, mid.id, dear.id, usd.id].sort());
  });
});

describe('GET /v1/products/search: bad input', () => {
  test.each<{ name: string; query: Record<string, string>; path: string }>([
    { name: 'q too long', query: { q: 'a'.repeat(201) }, path: 'q' },
    { name: 'an empty q', query: { q: '  ' }, path: 'q' },
    { name: 'a negative minPrice', query: { minPrice: '-1' }, path: 'minPrice' },
    { name: 'a negative maxPrice', query: { maxPrice: '-5' }, path: 'maxPrice' },
    { name: 'a fractional price', query: { minPrice: '1.5' }, path: 'minPrice' },
    { name: 'minPrice above maxPrice', query: { minPrice: '10', maxPrice: '5' }, path: 'maxPrice' },
    { name: 'an unknown currency', query: { currency: 'ABC' }, path: 'currency' },
    { name: 'inStock not a boolean', query: { inStock: 'yes' }, path: 'inStock' },
    { name: 'limit 0', query: { limit: '0' }, path: 'limit' },
    { name: 'limit 101', query: { limit: '101' }, path: 'limit' },
    {
      name: 'a cursor not from this service',
      query: { cursor: 'bm90LWEtY3Vyc29y' },
      path: 'cursor',
    },
    // Well-formed cursors whose values do not fit the sort: [_score, id] with q, [id] without.
    {
      name: 'a cursor of strings for [score, id]',
      query: { q: 'a', cursor: 'WyJ4IiwieSJd' },
      path: 'cursor',
    },
    {
      name: 'a cursor with a numeric id',
      query: { q: 'a', cursor: cursorOf([1, 2]) },
      path: 'cursor',
    },
    {
      name: 'a cursor with a null score',
      query: { q: 'a', cursor: cursorOf([null, 'x']) },
      path: 'cursor',
    },
    {
      name: 'a cursor with an object id',
      query: { q: 'a', cursor: cursorOf([1, { a: 1 }]) },
      path: 'cursor',
    },
    { name: 'a cursor one value short', query: { q: 'a', cursor: cursorOf([1]) }, path: 'cursor' },
    { name: 'a numeric id cursor without q', query: { cursor: cursorOf([1e300]) }, path: 'cursor' },
    { name: 'a boolean id cursor without q', query: { cursor: cursorOf([true]) }, path: 'cursor' },
    { name: 'an unknown parameter', query: { sort: 'price' }, path: '' },
  ])('when the query has $name, then 400 naming "$path"', async ({ query, path }) => {
    const res = await fetch(`${base}/v1/products/search?${new URLSearchParams(query).toString()}`);
    const body = (await res.json()) as {
      error: { code: string; details: { path: string }[] };
    };

    expect(res.status).toBe(400);
    expect(body.error.code).toBe('validation_failed');
    expect(body.error.details.map((d) => d.path)).toEqual([path]);
  });
});
