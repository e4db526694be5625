import { randomUUID } from 'node:crypto';
import { createPurchaseBody } from '../../api/purchases/request';
import { createPurchase } from '../../api/purchases/service';
import type { PurchaseDeps } from '../../api/purchases/service';
import { DEFAULT_WINDOW } from '../../api/purchases/start-window';
import type { Config } from '../../common/config';
import { createLogger } from '../../common/logger';
import { eventually } from '../config';
import type { Platform } from './harness';
import { createProduct, idleStarter, post, purchaseBody, startPlatform } from './harness';
import { finalState, ledger } from './helpers';

/*
 * The relay's backpressure (api/purchases/start-window.ts): with no purchase worker
 * taking work, a burst is accepted in full but only the window's first starts go out;
 * the rest wait in the outbox, and all of it drains once a worker is back.
 */
let platform: Platform;
beforeAll(async () => {
  platform = await startPlatform({}, { purchasesWorker: false });
});
afterAll(() => platform.close());

const BURST = 40;
const FIRST_WINDOW = DEFAULT_WINDOW.min * 4;

const outboxRows = (ids: string[]) =>
  platform.prisma.workflowStart.count({ where: { purchaseId: { in: ids } } });

/** Fails with what the relay left in the outbox for `ids`, so a timeout says why. */
async function expectStarted(ids: string[], atLeast: number): Promise<number> {
  const rows = await platform.prisma.workflowStart.findMany({
    where: { purchaseId: { in: ids } },
    select: { attempts: true, lastError: true },
  });
  const started = ids.length - rows.length;
  if (started >= atLeast) return started;
  const errors = [...new Set(rows.map((r) => r.lastError ?? 'none'))].slice(0, 3);
  const attempts = Math.max(0, ...rows.map((r) => r.attempts));
  throw new Error(
    `${started} of ${ids.length} started; up to ${attempts} attempts, last errors: ${errors.join(' | ')}`,
  );
}

test('when a burst arrives while the purchase workers take nothing, then only the first window is started, and the rest drains from the outbox once they are back', async () => {
  const productId = await createProduct(platform.prisma);
  const answers = await Promise.all(
    Array.from({ length: BURST }, () => post(platform, purchaseBody(productId))),
  );
  expect(answers.map((a) => a.status)).toEqual(Array(BURST).fill(202));
  const ids = answers.map((a) => a.json.id as string);

  await eventually(() => expectStarted(ids, DEFAULT_WINDOW.min));
  // Nothing to await for "no more starts": two pacing rounds' worth of seconds, then look.
  // The window may halve before all of its first starts are out, on a slow machine.
  await new Promise((r) => setTimeout(r, 2000));
  const started = BURST - (await outboxRows(ids));
  expect(started).toBeGreaterThanOrEqual(DEFAULT_WINDOW.min);
  expect(started).toBeLessThanOrEqual(FIRST_WINDOW);

  platform.startPurchasesWorker();

  await eventually(async () => {
    const approved = await platform.prisma.purchase.count({
      where: { id: { in: ids }, status: 'APPROVED' },
    });
    return approved === BURST ? true : undefined;
  }, 90_000);
  expect(await outboxRows(ids)).toBe(0);
  const keys = (await ledger(platform)).map((c) => c.idempotencyKey);
  expect(new Set(keys).size).toBe(BURST);
  expect(keys).toHaveLength(BURST);
});

test('when due outbox rows belong to a task queue nobody works on, then purchases of a served queue still start at once', async () => {
  const productId = await createProduct(platform.prisma);
  const body = createPurchaseBody.parse(purchaseBody(productId));
  const deadQueue = { ...platform.config, PURCHASES_TASK_QUEUE: `nobody-${randomUUID()}` };
  const deps = (config: Config): PurchaseDeps => ({
    prisma: platform.prisma,
    sql: platform.sql,
    starter: idleStarter(config),
    config,
    logger: createLogger('t', 'silent'),
    search: platform.search,
  });
  // More rows than a window holds, all due now, for a queue without workers.
  const stranded = await Promise.all(
    Array.from({ length: FIRST_WINDOW * 2 }, async () => {
      const { purchase } = await createPurchase(deps(deadQueue), 'm_local', randomUUID(), {
        ...body,
        customerId: `cus_${randomUUID().slice(0, 8)}`,
      });
      return purchase.id;
    }),
  );
  await platform.prisma.workflowStart.updateMany({
    where: { purchaseId: { in: stranded } },
    data: { nextAttemptAt: new Date() },
  });
  await eventually(() => expectStarted(stranded, 1));

  const res = await post(platform, purchaseBody(productId));

  expect(res.status).toBe(202);
  await finalState(platform, res.json.id as string, ['APPROVED'], 20_000);
});
