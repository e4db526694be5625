import { randomUUID } from 'node:crypto';
import { requireRole } from '../../common/auth';
import { createHttpApp, listen } from '../../common/http';
import { createLogger } from '../../common/logger';
import { searchPurchasesHandler } from '../../api/purchases/search';
import type { PurchaseDoc } from '../../search/documents';
import { eventually } from '../config';
import { testConfig } from '../config';
import { startPipeline, uniqueWord } from './harness';
import type { Pipeline } from './harness';

const LOCAL = { authorization: 'Bearer sk_test_local' };
const OTHER = { authorization: 'Bearer sk_test_other' };
let pipeline: Pipeline;
let base = '';
let stopHttp: (() => Promise<void>) | undefined;
const created: string[] = [];

beforeAll(async () => {
  pipeline = await startPipeline();
  await pipeline.startIndexer();
  const logger = createLogger('api', testConfig.LOG_LEVEL);
  // Mounted the way api/purchases/routes.ts does: merchant key first, then the handler.
  const app = createHttpApp(logger, (a) => {
    a.get(
      '/v1/purchases/search',
      requireRole(pipeline.prisma, 'merchant', 0),
      searchPurchasesHandler(pipeline.engine),
    );
  });
  const http = await listen(app, 0);
  base = `http://127.0.0.1:${http.port}`;
  stopHttp = http.close;
});

afterAll(async () => {
  await stopHttp?.();
  await pipeline.prisma.purchase.deleteMany({ where: { id: { in: created } } });
  await pipeline.close();
});

async function insertPurchase(
  merchantId: string,
  customerId: string,
  status: string,
  createdAt: Date,
): Promise<string> {
  const id = `pur_${randomUUID().replaceAll('-', '')}`;
  await pipeline.prisma.purchase.create({
    data: {
      id,
      merchantId,
      customerId,
      idempotencyKey: id,
      workflowId: `purchase:${merchantId}:${id}`,
      amountMinor: 2500n,
      currency: 'BRL',
      status,
      createdAt,
    },
  });
  created.push(id);
  return id;
}

interface Page {
  data: PurchaseDoc[];
  nextCursor: string | null;
}

async function search(
  headers: Record<string, string>,
  query: Record<string, string>,
): Promise<{
  status: number;
  body: Page & { error?: { code: string; details: { path: string }[] } };
}> {
  const res = await fetch(`${base}/v1/purchases/search?${new URLSearchParams(query).toString()}`, {
    headers,
  });
  return { status: res.status, body: (await res.json()) as Page & { error?: never } };
}

const cursorOf = (values: unknown[]): string =>
  Buffer.from(JSON.stringify(values)).toString('base64url');

test('when two merchants have purchases of the same customer id, then each sees only its own', async () => {
  const customerId = `cus_${uniqueWord()}`;
  const at = new Date();
  const mine = [
    await insertPurchase('m_local', customerId, 'APPROVED', at),
    await insertPurchase('m_local', customerId, 'DECLINED', new Date(at.getTime() + 1000)),
  ];
  const theirs = await insertPurchase('m_other', customerId, 'APPROVED', at);

  const local = await eventually(async () => {
    const res = await search(LOCAL, { customerId });
    return res.body.data?.length === 2 ? res.body : undefined;
  });
  const other = await eventually(async () => {
    const res = await search(OTHER, { customerId });
    return res.body.data?.length === 1 ? res.body : undefined;
  });

  // Newest first.
  expect(local.data.map((p) => p.id)).toEqual([mine[1], mine[0]]);
  expect(other.data.map((p) => p.id)).toEqual([theirs]);
  expect(
    (await search(LOCAL, { customerId, status: 'DECLINED' })).body.data.map((p) => p.id),
  ).toEqual([mine[1]]);
  // A merchant cannot widen the scope through the query.
  expect((await search(OTHER, { customerId, merchantId: 'm_local' })).status).toBe(400);
});

test('when a time range is given, then only purchases created in [from, to) come back', async () => {
  const customerId = `cus_${uniqueWord()}`;
  const t0 = new Date('2026-01-10T12:00:00.000Z');
  const early = await insertPurchase('m_local', customerId, 'APPROVED', t0);
  const middle = await insertPurchase(
    'm_local',
    customerId,
    'APPROVED',
    new Date(t0.getTime() + 3600_000),
  );
  await insertPurchase('m_local', customerId, 'APPROVED', new Date(t0.getTime() + 7200_000));
  await eventually(async () =>
    (await search(LOCAL, { customerId })).body.data?.length === 3 ? true : undefined,
  );

  const res = await search(LOCAL, {
    customerId,
    from: '2026-01-10T12:00:00.000Z',
    to: '2026-01-10T14:00:00Z',
  });

  expect(res.status).toBe(200);
  expect(res.body.data.map((p) => p.id)).toEqual([middle, early]);
});

test('when purchases span pages, then following nextCursor returns each once, newest first', async () => {
  const customerId = `cus_${uniqueWord()}`;
  const t0 = new Date('2026-02-01T08:00:00.000Z');
  const newestFirst: string[] = [];
  for (let i = 0; i < 5; i++) {
    newestFirst.unshift(
      await insertPurchase('m_local', customerId, 'APPROVED', new Date(t0.getTime() + i * 1000)),
    );
  }
  await eventually(async () =>
    (await search(LOCAL, { customerId })).body.data?.length === 5 ? true : undefined,
  );

  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const res: Awaited<ReturnType<typeof search>> = await search(LOCAL, {
      customerId,
      limit: '2',
      ...(cursor && { cursor }),
    });
    expect(res.status).toBe(200);
    seen.push(...res.body.data.map((p) => p.id));
    cursor = res.body.nextCursor;
  } while (cursor);

  expect(seen).toEqual(newestFirst);
});

test.each<{
  name: string;
  headers: Record<string, string>;
  query: Record<string, string>;
  status: number;
  path?: string;
}>([
  { name: 'no key', headers: {}, query: {}, status: 401, path: undefined },
  {
    name: 'an unknown status',
    headers: LOCAL,
    query: { status: 'LOST' },
    status: 400,
    path: 'status',
  },
  {
    name: 'a from that is not a timestamp',
    headers: LOCAL,
    query: { from: 'yesterday' },
    status: 400,
    path: 'from',
  },
  {
    name: 'to before from',
    headers: LOCAL,
    query: { from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' },
    status: 400,
    path: 'to',
  },
  { name: 'limit 101', headers: LOCAL, query: { limit: '101' }, status: 400, path: 'limit' },
  {
    name: 'a foreign cursor',
    headers: LOCAL,
    query: { cursor: 'WzFd' },
    status: 400,
    path: 'cursor',
  },
  // Well-formed cursors whose values do not fit the sort [createdAt (epoch ms), id].
  ...[
    { name: 'a cursor of strings', cursor: 'WyJ4IiwieSJd' },
    { name: 'a cursor with a date string', cursor: cursorOf(['2026-01-01T00:00:00Z', 'pur_x']) },
    { name: 'a cursor with a fractional time', cursor: cursorOf([1.5, 'pur_x']) },
    { name: 'a cursor with a time past 2^53', cursor: cursorOf([1e300, 'pur_x']) },
    { name: 'a cursor with a numeric id', cursor: cursorOf([1, 2]) },
    { name: 'a cursor with a boolean time', cursor: cursorOf([true, 'pur_x']) },
    { name: 'a cursor one value long', cursor: cursorOf([1, 'pur_x', 'pur_y']) },
  ].map(({ name, cursor }) => ({
    name,
    headers: LOCAL,
    query: { cursor },
    status: 400,
    path: 'cursor',
  })),
])('when the request has $name, then $status', async ({ headers, query, status, path }) => {
  const res = await search(headers, query);

  expect(res.status).toBe(status);
  if (path !== undefined) expect(res.body.error?.details.map((d) => d.path)).toEqual([path]);
});
