import { randomUUID } from 'node:crypto';
import { createServer, Socket } from 'node:net';
import type { Server } from 'node:net';
import { differenceCount, repair, reindex, verify, verifyIndex } from '../../ops/search';
import type { IndexDifferences } from '../../ops/search';
import { connectorStatus } from '../../search/connect';
import { eventually, testConfig } from '../config';
import { CONNECTOR, startPipeline, uniqueWord, waitForConnector } from './harness';
import type { Pipeline } from './harness';

/*
 * Parts of the pipeline going away. Kafka Connect and OpenSearch are shared by every
 * session on this machine, so neither process is killed: Connect's own REST "stop"
 * takes the connector down (its tasks end, its offsets are kept), and OpenSearch
 * "goes down" for the indexer through a TCP proxy this test closes.
 */

const run = `it-resilience-${randomUUID()}`;
let pipeline: Pipeline;
let proxy: Proxy;

beforeAll(async () => {
  pipeline = await startPipeline();
  proxy = await startProxy(new URL(testConfig.OPENSEARCH_URL));
  await pipeline.startIndexer(`http://127.0.0.1:${proxy.port}`);
});

afterAll(async () => {
  await putConnector('resume').catch(() => undefined);
  proxy?.up();
  await pipeline.prisma.product.deleteMany({ where: { sku: { startsWith: run } } });
  await pipeline.close();
  await proxy?.close();
});

async function createProducts(n: number): Promise<string[]> {
  const word = uniqueWord();
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const row = await pipeline.prisma.product.create({
      data: {
        sku: `${run}-${word}-${i}`,
        name: `Filtro ${word}`,
        description: '',
        priceMinor: 990,
        currency: 'BRL',
        stock: 1,
      },
    });
    ids.push(row.id);
  }
  return ids;
}

/** What the app's PATCH does: the change and the version bump in one UPDATE. */
async function bump(ids: string[]): Promise<void> {
  for (const id of ids) {
    await pipeline.prisma.product.update({
      where: { id },
      data: { stock: { increment: 1 }, version: { increment: 1 } },
    });
  }
}

/** Differences that concern `ids` (other sessions may be writing other rows meanwhile). */
function about(diff: IndexDifferences, ids: string[]): number {
  const mine = new Set(ids);
  return (
    diff.missing.filter((id) => mine.has(id)).length +
    diff.stale.filter((s) => mine.has(s.id)).length +
    diff.extra.filter((id) => mine.has(id)).length
  );
}

const settled = (ids: string[], timeoutMs = 60000): Promise<IndexDifferences> =>
  eventually(
    async () => {
      const diff = await verifyIndex(pipeline, 'products');
      return about(diff, ids) === 0 ? diff : undefined;
    },
    timeoutMs,
    250,
  );

async function putConnector(action: 'stop' | 'resume'): Promise<void> {
  const res = await fetch(`${testConfig.KAFKA_CONNECT_URL}/connectors/${CONNECTOR}/${action}`, {
    method: 'PUT',
  });
  if (res.status >= 300) throw new Error(`${action}: ${res.status} ${await res.text()}`);
}

test('when Kafka Connect is down while 100 products change, then after it returns verify finds no difference', async () => {
  const ids = await createProducts(100);
  await settled(ids);

  await putConnector('stop');
  await eventually(async () => {
    const s = await connectorStatus(testConfig.KAFKA_CONNECT_URL, CONNECTOR);
    return s.connector.state === 'STOPPED' ? true : undefined;
  });
  try {
    await bump(ids);
    const during = await verifyIndex(pipeline, 'products');
    expect(during.stale.filter((s) => ids.includes(s.id))).toHaveLength(100);
  } finally {
    await putConnector('resume');
  }
  await waitForConnector();

  await settled(ids);
  // The whole table, not only this test's rows: nothing was lost or applied out of order.
  const all = await eventually(
    async () => {
      const diffs = await verify(pipeline, ['products', 'purchases']);
      return diffs.every((d) => differenceCount(d) === 0) ? diffs : undefined;
    },
    60000,
    500,
  );
  expect(all.map(differenceCount)).toEqual([0, 0]);
});

test('when OpenSearch is unreachable while products change, then the index converges once it is back', async () => {
  const ids = await createProducts(50);
  await settled(ids);

  proxy.down();
  const refusedBefore = proxy.refused;
  await bump(ids);
  await bump(ids.slice(0, 10));
  // The indexer has the changes and keeps trying; the index still holds the old versions.
  await eventually(() => Promise.resolve(proxy.refused >= refusedBefore + 3 ? true : undefined));
  const during = await verifyIndex(pipeline, 'products');
  expect(during.stale.filter((s) => ids.includes(s.id)).length).toBe(50);
  proxy.up();

  const after = await settled(ids);
  expect(about(after, ids)).toBe(0);
});

test('when an index lacks documents, then verify names them and repair writes them from MySQL', async () => {
  const ids = await createProducts(3);
  await settled(ids);
  // A new, empty generation: every row is missing from it.
  const empty = await pipeline.engine.createNextIndex('products');

  const diff = await verifyIndex(pipeline, 'products', empty);
  expect(diff.missing).toEqual(expect.arrayContaining(ids));
  expect(diff.documents).toBe(0);

  await repair(pipeline, diff);
  expect(about(await verifyIndex(pipeline, 'products', empty), ids)).toBe(0);
});

test('when products are reindexed, then the alias moves to the next index with every row and search keeps answering', async () => {
  const ids = await createProducts(5);
  await settled(ids);
  const before = await pipeline.engine.currentIndex('products');

  const result = await reindex(pipeline, 'products');

  expect(result.previous).toEqual([before]);
  expect(result.current).toMatch(new RegExp(`^${pipeline.prefix}products_v\\d+$`));
  expect(result.current).not.toBe(before);
  expect(await pipeline.engine.currentIndex('products')).toBe(result.current);
  // CDC writes now land in the new index.
  await bump(ids);
  await settled(ids);
  await pipeline.engine.refresh('products');
  const page = await pipeline.engine.searchProducts({ q: 'filtro', limit: 100 });
  expect(page.data.length).toBeGreaterThan(0);
});

interface Proxy {
  port: number;
  /** Connections refused while down; proves the indexer really tried. */
  refused: number;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

/** A loopback TCP proxy to `target`; while down it cuts open connections and resets new ones. */
async function startProxy(target: URL): Promise<Proxy> {
  const sockets = new Set<Socket>();
  let isDown = false;
  let refused = 0;
  const server: Server = createServer((client) => {
    if (isDown) {
      refused++;
      client.resetAndDestroy();
      return;
    }
    const upstream = new Socket();
    upstream.connect(Number(target.port), target.hostname);
    for (const sock of [client, upstream]) {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = address && typeof address === 'object' ? address.port : 0;
  return {
    port,
    get refused() {
      return refused;
    },
    down() {
      isDown = true;
      for (const s of sockets) s.destroy();
    },
    up() {
      isDown = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
