import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { createApiApp } from '../api/app';
import type { PurchaseDeps } from '../api/purchases/service';
import { hashApiKey } from '../common/auth';
import { loadConfig } from '../common/config';
import { createPrisma, createSqlPool } from '../common/db';
import { listen } from '../common/http';
import { createLogger } from '../common/logger';
import { seedLocal } from '../ops/seed';
import { createProdutoApp } from '../produto/app';
import { createOpenSearchClient, createOpenSearchEngine } from '../search/opensearch';

/*
 * Property: no bad request is ever a 5xx, every answer carries the error body, and no
 * bad request writes a row. Every generated request breaks at least one rule by
 * construction, while the rest of it is valid, so the checks past auth are exercised too.
 * Requests go over raw sockets, because fetch and http.request refuse malformed input.
 */

const run = randomUUID().slice(0, 8);
const config = loadConfig({
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  // No worker listens here: a start that slipped through would stay in the outbox.
  PURCHASES_TASK_QUEUE: `fuzz-${run}`,
});
const prisma = createPrisma(config.DATABASE_URL, 10);
const sql = createSqlPool(config.DATABASE_URL, 10);
const MERCHANT_ID = `m_fuzz_${run}`;
const MERCHANT_KEY = `sk_fuzz_${run}`;
const ADMIN_KEY = 'sk_admin_local';
const SKU_PREFIX = `fuzz-${run}`;

const BATCH = 50;
const RUNS = 200;
const CONCURRENCY = 25;

/** Unhandled errors the apps log: the cause behind any 5xx. */
const unhandled: string[] = [];
const logger = createLogger(
  'fuzz',
  'error',
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      unhandled.push(chunk.toString());
      done();
    },
  }),
);

const starterCalls: string[] = [];
const starter: PurchaseDeps['starter'] = {
  seal: () => {
    starterCalls.push('seal');
    return Promise.resolve({ metadata: {}, data: '' });
  },
  ensureAvailable: () => {
    starterCalls.push('ensureAvailable');
  },
  kick: () => {
    starterCalls.push('kick');
  },
};

let apiPort = 0;
let produtoPort = 0;
let productId = '';
const stops: (() => Promise<void>)[] = [];

async function startApps(): Promise<void> {
  const search = createOpenSearchEngine(createOpenSearchClient(config.OPENSEARCH_URL));
  stops.push(() => search.close());
  // The fuzzed routes start no redelivery; one would fail as with Temporal away.
  const workflows = { start: () => Promise.reject(new Error('no Temporal in the fuzz test')) };
  const api = await listen(
    createApiApp({ prisma, sql, starter, config, logger, search, workflows }),
    0,
  );
  const produto = await listen(createProdutoApp({ prisma, logger, search }), 0);
  stops.push(api.close, produto.close);
  apiPort = api.port;
  produtoPort = produto.port;
}

interface RowCounts {
  purchases: number;
  purchaseItems: number;
  idempotencyKeys: number;
  workflowStarts: number;
  products: number;
  fixture: unknown;
}

/** Every row a request of this run could write; the store is shared, so scoped to the run. */
async function countRows(): Promise<RowCounts> {
  const merchant = { merchantId: MERCHANT_ID };
  const fixture = await prisma.product.findUnique({ where: { id: productId } });
  return {
    purchases: await prisma.purchase.count({ where: merchant }),
    purchaseItems: await prisma.purchaseItem.count({
      where: { OR: [{ purchase: merchant }, { productId }] },
    }),
    idempotencyKeys: await prisma.idempotencyKey.count({ where: merchant }),
    workflowStarts: await prisma.workflowStart.count({
      where: { taskQueue: config.PURCHASES_TASK_QUEUE },
    }),
    products: await prisma.product.count({ where: { sku: { startsWith: SKU_PREFIX } } }),
    fixture,
  };
}

beforeAll(async () => {
  await seedLocal(prisma);
  await prisma.merchant.create({ data: { id: MERCHANT_ID, name: MERCHANT_ID } });
  await prisma.apiKey.create({
    data: { keyHash: hashApiKey(MERCHANT_KEY), role: 'merchant', merchantId: MERCHANT_ID },
  });
  const product = await prisma.product.create({
    data: {
      sku: `${SKU_PREFIX}-fixture`,
      name: 'Café',
      description: '',
      priceMinor: 2500,
      currency: 'BRL',
      stock: 100,
    },
  });
  productId = product.id;
  await startApps();
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await prisma.workflowStart.deleteMany({ where: { taskQueue: config.PURCHASES_TASK_QUEUE } });
  await prisma.idempotencyKey.deleteMany({ where: { merchantId: MERCHANT_ID } });
  await prisma.purchaseItem.deleteMany({ where: { purchase: { merchantId: MERCHANT_ID } } });
  await prisma.purchase.deleteMany({ where: { merchantId: MERCHANT_ID } });
  await prisma.product.deleteMany({ where: { sku: { startsWith: SKU_PREFIX } } });
  await prisma.apiKey.deleteMany({ where: { merchantId: MERCHANT_ID } });
  await prisma.merchant.deleteMany({ where: { id: MERCHANT_ID } });
  await prisma.$disconnect();
  await sql.end();
});

/* ---------- a request under construction, and the flaws that break it ---------- */

interface Draft {
  app: 'api' | 'produto';
  method: string;
  path: string;
  query: string;
  /** Header lines as sent; a flaw may put bytes there that HTTP forbids. */
  headers: [string, string][];
  value?: unknown;
  /** The body bytes, when a flaw set them; otherwise the JSON of `value`. */
  bytes?: Buffer;
  flaws: string[];
}

type Flaw = fc.Arbitrary<(d: Draft) => void>;

const jsonType: [string, string] = ['Content-Type', 'application/json'];

const flaw = <T>(name: string, values: fc.Arbitrary<T>, apply: (d: Draft, v: T) => void): Flaw =>
  values.map((v) => (d: Draft) => {
    d.flaws.push(`${name}: ${JSON.stringify(v)?.slice(0, 80)}`);
    apply(d, v);
  });

const setHeader = (d: Draft, name: string, value: string | undefined): void => {
  d.headers = d.headers.filter(([n]) => n.toLowerCase() !== name.toLowerCase());
  if (value !== undefined) d.headers.push([name, value]);
};

/** Body fields of the draft, if its body is still an object; a flaw may have replaced it. */
const fieldsOf = (d: Draft): Record<string, unknown> | undefined =>
  d.value && typeof d.value === 'object' && !Array.isArray(d.value)
    ? (d.value as Record<string, unknown>)
    : undefined;

const setField = (d: Draft, key: string, value: unknown): void => {
  // defineProperty, so a key such as "__proto__" becomes a field rather than a prototype.
  const fields = fieldsOf(d);
  if (fields) {
    Object.defineProperty(fields, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
};

const removeField = (d: Draft, key: string): void => {
  const fields = fieldsOf(d);
  if (fields) delete fields[key];
};

/** Gives a draft with no body a JSON one, so a flaw of the body has a body to spoil. */
const ensureBody = (d: Draft): void => {
  if (d.bytes === undefined && d.value === undefined) d.value = { any: 'body' };
  if (!d.headers.some(([n]) => n === 'Content-Type')) d.headers.push(jsonType);
};

/** UTF-8 bytes as %XX each: unlike encodeURIComponent it takes lone surrogates too. */
const percentEncode = (text: string): string =>
  [...Buffer.from(text)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

const nestedArrays = (depth: number, inner: unknown = 1): unknown => {
  let value = inner;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};

const LONE_SURROGATES = ['\ud800', '\udbff', '\udc00', '\udfff', 'a\ud83d', '\ude00b'];
const loneSurrogate = fc
  .tuple(fc.string({ maxLength: 10 }), fc.constantFrom(...LONE_SURROGATES))
  .map(([s, lone]) => s + lone);

/** Text that is not a JSON object or array, as body-parser's strict mode reads it. */
const notJsonObjectText = fc
  .oneof(
    fc.constantFrom(
      '{',
      '{"a":',
      "{'a':1}",
      '{"a":1,}',
      '[1,2',
      '{"a":1}{"b":2}',
      'NaN',
      'null',
      'true',
      '"text"',
      '123',
      '  ',
      '{"a":01}',
      '{"a":"\\x"}',
      '{"a":"\u0001"}',
      '\u0000',
    ),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }),
  )
  .filter((text) => {
    if (Buffer.byteLength(text) === 0) return false;
    try {
      const parsed: unknown = JSON.parse(text.replace(/^\ufeff/, ''));
      return parsed === null || typeof parsed !== 'object';
    } catch {
      return true;
    }
  });

/** Flaws any endpoint can have: they are refused before a route runs. */
const anyEndpointFlaws: Flaw[] = [
  flaw('malformed JSON', notJsonObjectText, (d, text) => {
    ensureBody(d);
    d.bytes = Buffer.from(text);
  }),
  flaw('body nested too deep', fc.integer({ min: 33, max: 28_000 }), (d, depth) => {
    ensureBody(d);
    d.bytes = Buffer.from('['.repeat(depth) + ']'.repeat(depth));
  }),
  flaw('objects nested too deep', fc.integer({ min: 33, max: 12_000 }), (d, depth) => {
    ensureBody(d);
    d.bytes = Buffer.from('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
  }),
  flaw(
    'lone surrogate escape',
    fc.constantFrom('"\\ud800"', '"x\\udfff"', '"\\ude00\\ud83d"'),
    (d, escaped) => {
      ensureBody(d);
      d.bytes = Buffer.from(`{"customerId":${escaped},"k":[${escaped}]}`);
    },
  ),
  flaw('body over 64 KB', fc.integer({ min: 65 * 1024, max: 80 * 1024 }), (d, size) => {
    ensureBody(d);
    d.bytes = Buffer.from(JSON.stringify({ pad: 'x'.repeat(size) }));
  }),
  flaw(
    'content type not JSON',
    fc.constantFrom(
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'json',
      'application/json; charset=iso-8859-1',
      'application/json; charset=koi8-r',
      '',
      undefined,
    ),
    (d, type) => {
      ensureBody(d);
      setHeader(d, 'Content-Type', type);
    },
  ),
  flaw(
    'unsupported content encoding',
    fc.constantFrom('compress', 'zstd', 'x-gzip', 'gzip, br', 'identity, gzip', 'snappy'),
    (d, encoding) => {
      ensureBody(d);
      setHeader(d, 'Content-Encoding', encoding);
    },
  ),
  flaw(
    'corrupt compressed body',
    fc.tuple(
      fc.constantFrom('gzip', 'br', 'deflate'),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.boolean(),
    ),
    (d, [encoding, junk, truncate]) => {
      ensureBody(d);
      const sound = (encoding === 'br' ? brotliCompressSync : gzipSync)('{"a":1}');
      // A cut-off stream, or junk after a start no gzip, zlib or brotli stream has.
      d.bytes = truncate
        ? Buffer.from(sound.subarray(0, Math.max(1, sound.length - 4)))
        : Buffer.concat([Buffer.from([0x00, 0xff]), junk]);
      setHeader(d, 'Content-Encoding', encoding);
    },
  ),
  flaw(
    'header the HTTP parser refuses',
    fc.constantFrom(
      ['X-Note', 'a\u0000b'],
      ['X-Note', 'a\rb'],
      ['X-No\nte', 'b'],
      ['X-Note ', 'space before the colon'],
      ['X-Big', 'a'.repeat(20 * 1024)],
      ['Transfer-Encoding', 'chunked\r\nContent-Length: 3'],
      ['Content-Length', 'abc'],
      ['Content-Length', '1\r\nContent-Length: 2'],
      ['X(Note)', 'separators in a name'],
    ),
    (d, [name, value]) => {
      d.headers.unshift([name, value]);
    },
  ),
  flaw('a method no route has', fc.constantFrom('PUT', 'PROPFIND'), (d, method) => {
    d.method = method;
  }),
  flaw(
    'a trailing path segment',
    fc.constantFrom('x', 'search/x', '%ff', '..', 'a/b/c', '%2e%2e', '%'),
    (d, segment) => {
      d.path = `${d.path}/${segment}`;
    },
  ),
];

const authFlaws = (validKey: string, otherRoleKey: string): Flaw[] => [
  flaw(
    'bad Authorization',
    fc.constantFrom(
      undefined,
      '',
      'Bearer',
      'Bearer ',
      `Bearer sk_unknown_${run}`,
      `Basic ${Buffer.from(`${validKey}:`).toString('base64')}`,
      `bearer ${validKey}`,
      `Token ${validKey}`,
      `Bearer ${validKey} extra`,
      `Bearer ${'k'.repeat(201)}`,
      `Bearer ${otherRoleKey}`,
      `Bearer ${validKey}\u00e9`,
      `Bearer  ${validKey}`,
    ),
    (d, value) => setHeader(d, 'Authorization', value),
  ),
  flaw('a second Authorization after a bad one', fc.constant(validKey), (d, key) => {
    // Node keeps the first Authorization and drops the rest.
    setHeader(d, 'Authorization', 'Bearer sk_nobody');
    d.headers.push(['Authorization', `Bearer ${key}`]);
  }),
];

const queryFlaws = (unknownParam: string, params: Record<string, string[]>): Flaw[] => [
  flaw(
    'unknown query parameter',
    fc.tuple(fc.constantFrom(unknownParam, 'sort', 'a[b]', '%ff', '__proto__', 'LIMIT'), fc.nat()),
    (d, [key, n]) => {
      d.query += `&${key}=${n}`;
    },
  ),
  flaw(
    'limit out of range',
    fc.constantFrom('0', '101', '-1', '1.5', 'abc', '', '1e3', '%ff'),
    (d, v) => {
      d.query += `&limit=${v}`;
    },
  ),
  flaw('a parameter given twice', fc.constantFrom(...Object.keys(params)), (d, key) => {
    const [first = 'x', second = first] = params[key] ?? [];
    d.query += `&${key}=${encodeURIComponent(first)}&${key}=${encodeURIComponent(second)}`;
  }),
  flaw(
    'bad parameter value',
    fc
      .constantFrom(...Object.entries(params))
      .chain(([key, bad]) => fc.constantFrom(...bad).map((v) => [key, v] as const)),
    (d, [key, value]) => {
      d.query += `&${key}=${encodeURIComponent(value)}`;
    },
  ),
];

/**
 * Well-formed cursors (base64url JSON arrays) that fit no endpoint's sort, by type or by
 * length: products [id], products with q [score, id], purchases [createdAt ms, id].
 */
const MISSHAPEN_CURSORS = (
  [
    [],
    ['x', 'y'],
    [1, 2],
    [7],
    [true],
    [null, 'x'],
    ['2026-01-01T00:00:00Z', 'x'],
    [1e300, 7],
    [1.5, 'x', 'y'],
    [{}, 'x'],
    [[1], 'x'],
  ] as unknown[][]
).map((values) => Buffer.from(JSON.stringify(values)).toString('base64url'));

const CURSORS = [
  '!',
  'not a cursor',
  'x'.repeat(501),
  Buffer.from('nope').toString('base64url'),
  ...MISSHAPEN_CURSORS,
];

const purchaseBody = (): Record<string, unknown> => ({
  customerId: `cus_${randomUUID().slice(0, 8)}`,
  items: [{ productId, quantity: 2 }],
  currency: 'BRL',
  paymentMethod: { type: 'card_token', token: 'tok_visa' },
  metadata: { order: '42' },
});

type Kind = 'string' | 'number' | 'boolean' | 'object' | 'array';

/** Values of every JSON type but `kind` (and no empty object, which a record accepts). */
const wrongTypeFor = (kind: Kind): fc.Arbitrary<unknown> => {
  const choices: fc.Arbitrary<unknown>[] = [fc.constant(null)];
  if (kind !== 'boolean') choices.push(fc.boolean());
  if (kind !== 'number') choices.push(fc.integer(), fc.double({ noNaN: true }));
  if (kind !== 'string') choices.push(fc.string({ maxLength: 5 }));
  if (kind !== 'array') choices.push(fc.constant([1, 'a']));
  if (kind !== 'object' && kind !== 'array') choices.push(fc.constant({ a: 1 }));
  return fc.oneof(...choices);
};

/** Body flaws shared by the write schemas: strict objects of well-formed text, 32 levels at most. */
const commonValueFlaws = (kinds: Record<string, Kind>, required: string[]): Flaw[] => {
  const fields = Object.keys(kinds);
  return [
    ...(required.length > 0
      ? [flaw('a required field missing', fc.constantFrom(...required), removeField)]
      : []),
    flaw(
      'a field of the wrong type',
      fc
        .constantFrom(...fields)
        .chain((key) => wrongTypeFor(kinds[key] ?? 'string').map((v) => [key, v] as const)),
      (d, [key, value]) => setField(d, key, value),
    ),
    flaw(
      'an unknown field',
      fc.tuple(
        fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !fields.includes(k)),
        fc.jsonValue({ maxDepth: 2 }),
      ),
      (d, [key, value]) => setField(d, key, value),
    ),
    flaw(
      'a lone surrogate in a field',
      fc.tuple(fc.constantFrom(...fields), loneSurrogate),
      (d, [key, text]) => setField(d, key, text),
    ),
    flaw('a lone surrogate in a key', loneSurrogate, (d, key) => setField(d, key, 'x')),
    flaw(
      'a field nested too deep',
      fc.tuple(fc.constantFrom(...fields), fc.integer({ min: 33, max: 300 })),
      (d, [key, depth]) => setField(d, key, nestedArrays(depth)),
    ),
    flaw(
      'a body that is not an object',
      fc.oneof(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }), fc.constant([])),
      (d, value) => {
        d.value = value;
      },
    ),
  ];
};

const purchaseValueFlaws: Flaw[] = [
  ...commonValueFlaws(
    {
      customerId: 'string',
      items: 'array',
      currency: 'string',
      paymentMethod: 'object',
      metadata: 'object',
    },
    ['customerId', 'items', 'currency', 'paymentMethod'],
  ),
  flaw('a bad customerId', fc.constantFrom('', 'c'.repeat(256)), (d, v) =>
    setField(d, 'customerId', v),
  ),
  flaw(
    'bad items',
    fc.constantFrom<unknown[]>(
      [],
      Array.from({ length: 51 }, () => ({ productId: 'p', quantity: 1 })),
      [{ productId: 'p' }],
      [{ quantity: 1 }],
      [{ productId: '', quantity: 1 }],
      [{ productId: 'p'.repeat(65), quantity: 1 }],
      [{ productId: 'p', quantity: 1, price: 1 }],
      ['p'],
      [null],
    ),
    (d, items) => setField(d, 'items', items),
  ),
  flaw(
    'a bad quantity',
    fc.constantFrom<unknown>(0, -1, 101, 1.5, '2', null, 1e308, true),
    (d, quantity) => {
      const items = fieldsOf(d)?.items;
      if (Array.isArray(items) && items[0] && typeof items[0] === 'object') {
        (items[0] as Record<string, unknown>).quantity = quantity;
      } else setField(d, 'items', [{ productId, quantity }]);
    },
  ),
  flaw('a product that does not exist', fc.uuid(), (d, id) =>
    setField(d, 'items', [{ productId: id, quantity: 1 }]),
  ),
  flaw(
    'a bad currency',
    fc.constantFrom('brl', 'XYZ', 'BR', 'BRLL', '986', 'USD', ''),
    (d, currency) => setField(d, 'currency', currency),
  ),
  flaw(
    'a bad payment method',
    fc.constantFrom<unknown>(
      { type: 'pix', token: 't' },
      { type: 'card_token' },
      { type: 'card_token', token: '' },
      { type: 'card_token', token: 't'.repeat(256) },
      { type: 'card_token', token: 't', cvv: '123' },
      { token: 't' },
      'tok_visa',
    ),
    (d, method) => setField(d, 'paymentMethod', method),
  ),
  flaw(
    'bad metadata',
    fc.constantFrom<unknown>(
      { a: 1 },
      { ['k'.repeat(41)]: 'v' },
      { a: 'v'.repeat(501) },
      Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])),
      ['a'],
      'note',
    ),
    (d, metadata) => setField(d, 'metadata', metadata),
  ),
  flaw(
    'a raw card number',
    fc.tuple(
      fc.constantFrom('customerId', 'metadata', 'paymentMethod'),
      fc.constantFrom('4111111111111111', '5555 5555 5555 4444', '3782-822463-10005'),
    ),
    (d, [key, pan]) =>
      setField(
        d,
        key,
        key === 'customerId'
          ? pan
          : key === 'metadata'
            ? { note: pan }
            : { type: 'card_token', token: pan },
      ),
  ),
];

const idempotencyKeyFlaw = flaw(
  'bad Idempotency-Key',
  fc.constantFrom(undefined, '', 'k'.repeat(256), 'caf\u00e9', 'a\tb', '\u00ff'),
  (d, key) => setHeader(d, 'Idempotency-Key', key),
);

const productKinds: Record<string, Kind> = {
  sku: 'string',
  name: 'string',
  description: 'string',
  priceMinor: 'number',
  currency: 'string',
  stock: 'number',
  active: 'boolean',
};
const productFields = Object.keys(productKinds);
const badProductValues: Record<string, unknown[]> = {
  // Every string here fails the sku pattern, so no row can appear outside SKU_PREFIX.
  sku: ['', 'has space', 's'.repeat(65), 'a/b', 'ação', 7],
  name: ['', 'n'.repeat(201), null],
  description: ['d'.repeat(5001), 5],
  priceMinor: [0, -1, 19.99, '1999', 2_000_000_001, null],
  currency: ['brl', 'XYZ', 'BR', 1],
  stock: [-1, 1.5, 2_147_483_648, '10'],
  active: ['yes', 1, null],
};
const badProductValue = flaw(
  'a bad product value',
  fc
    .constantFrom(...productFields)
    .chain((key) =>
      fc.constantFrom(...(badProductValues[key] ?? [null])).map((v) => [key, v] as const),
    ),
  (d, [key, value]) => setField(d, key, value),
);

const productValueFlaws: Flaw[] = [
  ...commonValueFlaws(productKinds, ['sku', 'name', 'priceMinor', 'currency', 'stock']),
  badProductValue,
  flaw('a sku already taken', fc.constant('fixture'), (d, suffix) =>
    setField(d, 'sku', `${SKU_PREFIX}-${suffix}`),
  ),
];

const changeKinds = Object.fromEntries(Object.entries(productKinds).filter(([k]) => k !== 'sku'));
const changesValueFlaws: Flaw[] = [
  ...commonValueFlaws(changeKinds, []),
  badProductValue,
  flaw('no field to change', fc.constant({}), (d, empty) => {
    d.value = empty;
  }),
  flaw('the sku, which cannot change', fc.constant('new-sku'), (d, sku) => setField(d, 'sku', sku)),
];

const ifMatchFlaw = flaw(
  'bad If-Match',
  fc.constantFrom(
    undefined,
    '',
    'W/"1"',
    '*',
    '1',
    '"1", "2"',
    '"abc"',
    '"2"',
    '"99999999999"',
    '"-1"',
  ),
  (d, value) => setHeader(d, 'If-Match', value),
);

const malformedIds = ['%ff', '%c0%ae', '%ED%A0%80', '%', '%zz', 'a%2'];
const purchaseIdFlaw = flaw(
  'bad purchase id',
  fc.oneof(
    fc.constantFrom(
      ...malformedIds,
      'pur_xyz',
      `pur_${'A'.repeat(32)}`,
      `pur_${'0'.repeat(33)}`,
      'x'.repeat(3000),
    ),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map(percentEncode),
    // Well formed, but this merchant has no purchases: 404.
    fc.uuid().map((u) => `pur_${u.replaceAll('-', '')}`),
  ),
  (d, id) => {
    d.path = `/v1/purchases/${id}`;
  },
);
const productIdFlaw = flaw(
  'bad product id',
  fc.oneof(
    fc.constantFrom(...malformedIds, 'x'.repeat(3000), `${'0'.repeat(36)}`),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map(percentEncode),
    fc.uuid(),
  ),
  (d, id) => {
    d.path = `/v1/products/${id}`;
  },
);

interface Endpoint {
  name: string;
  base: () => Draft;
  /** The flaws of this endpoint's own rules; the transport flaws apply to every endpoint. */
  flaws: Flaw[];
}

const draft = (
  app: Draft['app'],
  method: string,
  path: string,
  extra: Partial<Draft> = {},
): Draft => ({
  app,
  method,
  path,
  query: '',
  headers: [],
  flaws: [],
  ...extra,
});

const merchantAuth = (): [string, string][] => [['Authorization', `Bearer ${MERCHANT_KEY}`]];
const adminAuth = (): [string, string][] => [['Authorization', `Bearer ${ADMIN_KEY}`]];

const purchaseListParams = {
  customerId: ['', 'c'.repeat(256)],
  status: ['approved', 'BOGUS', ''],
  cursor: CURSORS,
};
const purchaseSearchParams = {
  ...purchaseListParams,
  from: ['yesterday', '2024-01-01', '2024-13-01T00:00:00Z', ''],
  to: ['2024-01-01T00:00:00', 'soon'],
};
const productSearchParams = {
  q: ['', '   ', 'q'.repeat(201)],
  minPrice: ['-1', 'abc', '2000000001', '1.5'],
  maxPrice: ['-5', 'x'],
  currency: ['brl', 'XYZ'],
  inStock: ['yes', '1', 'TRUE'],
  cursor: CURSORS,
};

const ENDPOINTS: Endpoint[] = [
  {
    name: 'POST /v1/purchases',
    base: () =>
      draft('api', 'POST', '/v1/purchases', {
        headers: [...merchantAuth(), jsonType, ['Idempotency-Key', randomUUID()]],
        value: purchaseBody(),
      }),
    flaws: [...authFlaws(MERCHANT_KEY, ADMIN_KEY), idempotencyKeyFlaw, ...purchaseValueFlaws],
  },
  {
    name: 'GET /v1/purchases',
    base: () => draft('api', 'GET', '/v1/purchases', { headers: merchantAuth() }),
    flaws: [...authFlaws(MERCHANT_KEY, ADMIN_KEY), ...queryFlaws('from', purchaseListParams)],
  },
  {
    name: 'GET /v1/purchases/search',
    base: () => draft('api', 'GET', '/v1/purchases/search', { headers: merchantAuth() }),
    flaws: [
      ...authFlaws(MERCHANT_KEY, ADMIN_KEY),
      ...queryFlaws('q', purchaseSearchParams),
      flaw(
        'from not before to',
        fc.constant(['2024-02-01T00:00:00Z', '2024-01-01T00:00:00Z']),
        (d, [from = '', to = '']) => {
          d.query += `&from=${from}&to=${to}`;
        },
      ),
    ],
  },
  {
    name: 'GET /v1/purchases/:id',
    base: () =>
      draft('api', 'GET', `/v1/purchases/pur_${'0'.repeat(32)}`, { headers: merchantAuth() }),
    flaws: [...authFlaws(MERCHANT_KEY, ADMIN_KEY), purchaseIdFlaw],
  },
  {
    name: 'POST /v1/products',
    base: () =>
      draft('produto', 'POST', '/v1/products', {
        headers: [...adminAuth(), jsonType],
        value: {
          sku: `${SKU_PREFIX}-${randomUUID()}`,
          name: 'Café',
          description: 'grãos',
          priceMinor: 1999,
          currency: 'BRL',
          stock: 10,
        },
      }),
    flaws: [...authFlaws(ADMIN_KEY, MERCHANT_KEY), ...productValueFlaws],
  },
  {
    name: 'GET /v1/products',
    base: () => draft('produto', 'GET', '/v1/products'),
    flaws: [
      ...queryFlaws('q', {
        cursor: [...CURSORS, Buffer.from("' OR 1=1 --").toString('base64url')],
      }),
    ],
  },
  {
    name: 'GET /v1/products/search',
    base: () => draft('produto', 'GET', '/v1/products/search'),
    flaws: [
      ...queryFlaws('status', productSearchParams),
      // A valid q switches the sort to [score, id], which the cursors above must miss too.
      flaw('a misshapen cursor on a text search', fc.constantFrom(...MISSHAPEN_CURSORS), (d, c) => {
        d.query += `&q=cafe&cursor=${c}`;
      }),
      flaw('minPrice above maxPrice', fc.constant([10, 5]), (d, [min = 0, max = 0]) => {
        d.query += `&minPrice=${min}&maxPrice=${max}`;
      }),
    ],
  },
  {
    name: 'GET /v1/products/:id',
    base: () => draft('produto', 'GET', `/v1/products/${productId}`),
    flaws: [productIdFlaw],
  },
  {
    name: 'PATCH /v1/products/:id',
    base: () =>
      draft('produto', 'PATCH', `/v1/products/${productId}`, {
        headers: [...adminAuth(), jsonType, ['If-Match', '"1"']],
        value: { name: 'Café moído', stock: 5 },
      }),
    flaws: [
      ...authFlaws(ADMIN_KEY, MERCHANT_KEY),
      ...changesValueFlaws,
      ifMatchFlaw,
      productIdFlaw,
    ],
  },
  {
    name: 'DELETE /v1/products/:id',
    base: () => draft('produto', 'DELETE', `/v1/products/${productId}`, { headers: adminAuth() }),
    flaws: [...authFlaws(ADMIN_KEY, MERCHANT_KEY), productIdFlaw],
  },
];

/** One endpoint's valid request with one to three flaws applied. */
const badRequest: fc.Arbitrary<Draft> = fc.constantFrom(...ENDPOINTS).chain((endpoint) =>
  fc
    .array(
      // Weighted so the checks past the transport (auth, schemas, ids) see most requests.
      fc.oneof(
        { arbitrary: fc.oneof(...anyEndpointFlaws), weight: 1 },
        { arbitrary: fc.oneof(...endpoint.flaws), weight: 2 },
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map((flaws) => {
      const d = endpoint.base();
      d.flaws.push(endpoint.name);
      for (const apply of flaws) apply(d);
      return d;
    }),
);

/* ---------- the wire ---------- */

function wireBytes(d: Draft): Buffer {
  const body =
    d.bytes ?? (d.value === undefined ? undefined : Buffer.from(JSON.stringify(d.value)));
  const query = d.query ? `?${d.query.replace(/^&/, '')}` : '';
  const lines = [`${d.method} ${d.path}${query} HTTP/1.1`, 'Host: fuzz', 'Connection: close'];
  for (const [name, value] of d.headers) lines.push(`${name}: ${value}`);
  if (body) lines.push(`Content-Length: ${body.length}`);
  // latin1 keeps each header character one byte, as a client sending raw bytes would.
  return Buffer.concat([
    Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'),
    body ?? Buffer.alloc(0),
  ]);
}

interface Reply {
  status: number;
  contentType: string;
  body: string;
}

function exchange(port: number, bytes: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer in 15 s'));
    }, 15_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The server may close before it has read all we sent; what it answered still counts.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('utf8');
      const split = raw.indexOf('\r\n\r\n');
      if (split < 0) {
        reject(new Error(`no complete answer: ${JSON.stringify(raw.slice(0, 200))}`));
        return;
      }
      const head = raw.slice(0, split).split('\r\n');
      const contentType = head
        .find((l) => /^content-type:/i.test(l))
        ?.slice('content-type:'.length)
        .trim();
      resolve({
        status: Number(head[0]?.split(' ')[1]),
        contentType: contentType ?? '',
        body: raw.slice(split + 4),
      });
    });
    // No half-close: Node would abort a request still being answered.
    socket.write(bytes);
  });
}

/** Why a reply breaks the rule, or undefined when it keeps it. */
function ruleBroken(reply: Reply): string | undefined {
  if (reply.status < 400 || reply.status > 499) return `status ${reply.status}`;
  if (!reply.contentType.startsWith('application/json')) return `content-type ${reply.contentType}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply.body);
  } catch {
    return `body is not JSON: ${reply.body.slice(0, 100)}`;
  }
  const error = (parsed as { error?: Record<string, unknown> } | null)?.error;
  if (
    typeof error?.code !== 'string' ||
    typeof error.message !== 'string' ||
    !('details' in error) ||
    typeof error.requestId !== 'string'
  ) {
    return `not the error body: ${reply.body.slice(0, 200)}`;
  }
  return undefined;
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function pooled<T, R>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  });
  await Promise.all(lanes);
  return results;
}

test('when thousands of bad requests hit every endpoint, then each is a 4xx with the error body and none writes a row', async () => {
  const before = await countRows();
  const codes = new Map<string, number>();
  let sent = 0;
  const started = Date.now();

  await fc.assert(
    fc.asyncProperty(
      fc.array(badRequest, { minLength: BATCH, maxLength: BATCH }),
      async (batch) => {
        const failures = await pooled(batch, CONCURRENCY, async (d) => {
          sent++;
          const reply = await exchange(d.app === 'api' ? apiPort : produtoPort, wireBytes(d));
          const broken = ruleBroken(reply);
          if (!broken) {
            const code = (JSON.parse(reply.body) as { error: { code: string } }).error.code;
            codes.set(`${reply.status} ${code}`, (codes.get(`${reply.status} ${code}`) ?? 0) + 1);
          }
          return broken && `${broken} for ${d.flaws.join(' | ')}`;
        });
        const first = failures.find((f) => f !== undefined);
        if (first) throw new Error(`${first}\n${unhandled.slice(-3).join('\n')}`);
      },
    ),
    {
      numRuns: RUNS,
      // The message names the request's flaws, which is the reproduction; shrinking batches
      // of 50 is slow and the default report prints every body byte.
      endOnFailure: true,
      reporter: (details) => {
        if (!details.failed) return;
        const cause = details.errorInstance instanceof Error ? details.errorInstance.message : '';
        throw new Error(`fuzz failed (seed ${details.seed}): ${cause}`);
      },
    },
  );

  const after = await countRows();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `fuzz: ${sent} requests in ${seconds} s\n${[...codes]
      .sort()
      .map(([k, n]) => `  ${k}: ${n}`)
      .join('\n')}\n`,
  );
  expect(sent).toBeGreaterThanOrEqual(5000);
  expect(after).toEqual(before);
  expect(starterCalls).toEqual([]);
  expect(unhandled).toEqual([]);
}, 300_000);
