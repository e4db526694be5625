import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { differenceCount, repair, reindex, verify, verifyIndex } from '../../ops/search';
import type { IndexDifferences } from '../../ops/search';
import { eventually, testConfig } from '../config';
import { startPipeline, uniqueWord, waitForConnector } from './harness';
import type { Pipeline } from './harness';

/*
 * Parts of the pipeline going away for real: the Kafka Connect and OpenSearch processes
 * of the local stack are stopped and started again with the stack's own scripts.
 */

/** Runs a stack component function (`connect_stop`, `opensearch_start`, ...). */
async function stack(component: string, action: 'stop' | 'start'): Promise<void> {
  const steps =
    action === 'stop' ? `${component}_stop` : `${component}_start && wait_ready ${component} 240`;
  await promisify(execFile)(
    'bash',
    [
      '-c',
      `source stack/lib.sh && for f in stack/components/*.sh; do source "$f"; done && ${steps}`,
    ],
    { timeout: 300000 },
  );
}

const run = `it-resilience-${randomUUID()}`;
let pipeline: Pipeline;

beforeAll(async () => {
  pipeline = await startPipeline();
  await pipeline.startIndexer(testConfig.OPENSEARCH_URL);
});

afterAll(async () => {
  // Whatever happened above, leave the stack whole for the next test file.
  await stack('connect', 'start');
  await stack('opensearch', 'start');
  await pipeline.prisma.product.deleteMany({ where: { sku: { startsWith: run } } });
  await pipeline.close();
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

test('when Kafka Connect is down while 100 products change, then after it returns verify finds no difference', async () => {
  const ids = await createProducts(100);
  await settled(ids);

  await stack('connect', 'stop');
  try {
    await bump(ids);
    const during = await verifyIndex(pipeline, 'products');
    expect(during.stale.filter((s) => ids.includes(s.id))).toHaveLength(100);
  } finally {
    await stack('connect', 'start');
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

test('when OpenSearch is down while products change, then the index converges once it is back', async () => {
  const ids = await createProducts(50);
  await settled(ids);

  await stack('opensearch', 'stop');
  try {
    // The indexer takes these changes from Kafka and keeps retrying while the engine is away.
    await bump(ids);
    await bump(ids.slice(0, 10));
  } finally {
    await stack('opensearch', 'start');
  }

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
