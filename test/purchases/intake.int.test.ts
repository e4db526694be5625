import { randomUUID } from 'node:crypto';
import { createPurchaseBody } from '../../api/purchases/request';
import { createPurchase, getPurchase } from '../../api/purchases/service';
import { createWorkflowStarter } from '../../api/purchases/starter';
import type { StarterDeps } from '../../api/purchases/starter';
import type { PurchaseDeps } from '../../api/purchases/service';
import { createPrisma, createSqlPool } from '../../common/db';
import { createLogger } from '../../common/logger';
import { seedLocal } from '../../ops/seed';
import { eventually, testConfig } from '../config';
import { createProduct, idleStarter, purchaseBody } from './harness';

/*
 * The intake's one-round-trip transaction over the bare driver, against the stack's
 * MariaDB only: the starter is idle, so nothing reaches Temporal, and every outbox row a
 * test leaves is deleted before another api's relay could start it.
 */
const config = { ...testConfig, PURCHASES_TASK_QUEUE: `test-intake-${randomUUID().slice(0, 8)}` };
const prisma = createPrisma(config.DATABASE_URL, 4);
// One connection, so a transaction left open would show on the next query.
const sql = createSqlPool(config.DATABASE_URL, 1);
const deps: PurchaseDeps = {
  prisma,
  sql,
  starter: idleStarter(config),
  config,
  logger: createLogger('t', 'silent'),
  search: { searchPurchases: () => Promise.reject(new Error('not used')) },
};
let productId: string;

beforeAll(async () => {
  await seedLocal(prisma);
  productId = await createProduct(prisma, { priceMinor: 1999 });
});
afterAll(async () => {
  await prisma.workflowStart.deleteMany({ where: { taskQueue: config.PURCHASES_TASK_QUEUE } });
  await prisma.$disconnect();
  await sql.end();
});

const parse = (body: unknown) => createPurchaseBody.parse(body);

async function rowsOf(purchaseId: string, key: string) {
  const where = { purchaseId };
  return {
    keys: await prisma.idempotencyKey.count({ where: { key } }),
    purchases: await prisma.purchase.count({ where: { id: purchaseId } }),
    items: await prisma.purchaseItem.count({ where }),
    events: await prisma.purchaseEvent.count({ where }),
    starts: await prisma.workflowStart.count({ where }),
  };
}

test('when the outbox insert fails after the other writes, then no row of the purchase and no key is left', async () => {
  const key = randomUUID();
  let purchaseId = '';
  const seal = deps.starter.seal;
  // Takes the purchase's outbox id first, so the last insert of the transaction collides.
  const clashing = {
    ...deps.starter,
    seal: async (input: Parameters<typeof seal>[0]) => {
      purchaseId = input.purchaseId;
      await prisma.workflowStart.create({
        data: {
          purchaseId,
          workflowId: 'someone-else',
          taskQueue: config.PURCHASES_TASK_QUEUE,
          input: {},
          nextAttemptAt: new Date(Date.now() + 3600_000),
        },
      });
      return seal(input);
    },
  };

  const attempt = createPurchase(
    { ...deps, starter: clashing },
    'm_local',
    key,
    parse(purchaseBody(productId)),
  );

  await expect(attempt).rejects.toMatchObject({ errno: 1062 });
  expect(await rowsOf(purchaseId, key)).toEqual({
    keys: 0,
    purchases: 0,
    items: 0,
    events: 0,
    starts: 1,
  });
  const [state] = await sql.query<{ open: number }[]>('SELECT @@in_transaction AS open');
  expect(Number(state?.open)).toBe(0);
  // Nothing of it is left to stand in the way of a retry under the same key.
  const retry = await createPurchase(deps, 'm_local', key, parse(purchaseBody(productId)));
  expect(retry.replayed).toBe(false);
});

test('when 50 requests with one key arrive at once, then there is one purchase, one key and one outbox row', async () => {
  const key = randomUUID();
  const body = parse(purchaseBody(productId));
  const wide = { ...deps, sql: createSqlPool(config.DATABASE_URL, 10) };

  const outcomes = await Promise.all(
    Array.from({ length: 50 }, () => createPurchase(wide, 'm_local', key, body)),
  ).finally(() => wide.sql.end());

  const ids = new Set(outcomes.map((o) => o.purchase.id));
  expect(ids.size).toBe(1);
  expect(outcomes.filter((o) => !o.replayed)).toHaveLength(1);
  const [id] = [...ids] as string[];
  expect(await rowsOf(id!, key)).toEqual({ keys: 1, purchases: 1, items: 1, events: 1, starts: 1 });
});

test('when a purchase is replayed, then the view read through the driver is the one Prisma reads and the 202 showed', async () => {
  const other = await createProduct(prisma, { priceMinor: 500 });
  const body = parse({
    ...purchaseBody(productId),
    items: [
      { productId, quantity: 3 },
      { productId: other, quantity: 1 },
    ],
    metadata: { order: '1042', zeta: 'last', alpha: 'first' },
  });
  const key = randomUUID();
  const created = await createPurchase(deps, 'm_local', key, body);

  const replayed = await createPurchase(deps, 'm_local', key, body);
  const detail = await getPurchase(deps, 'm_local', created.purchase.id);
  const read = { ...detail, timeline: undefined };

  expect(replayed.replayed).toBe(true);
  expect(JSON.stringify(replayed.purchase)).toBe(JSON.stringify(read));
  expect(JSON.stringify(replayed.purchase)).toBe(JSON.stringify(created.purchase));
  expect(replayed.purchase).toMatchObject({ amount: 3 * 1999 + 500, status: 'RECEIVED' });
});

test('when an expired key is sent again, then its row gives way to a new purchase and the old purchase stays', async () => {
  const key = randomUUID();
  const first = await createPurchase(deps, 'm_local', key, parse(purchaseBody(productId)));
  await prisma.idempotencyKey.updateMany({
    where: { key },
    data: { expiresAt: new Date(Date.now() - 1000) },
  });

  const second = await createPurchase(deps, 'm_local', key, parse(purchaseBody(productId)));

  expect(second.replayed).toBe(false);
  expect(second.purchase.id).not.toBe(first.purchase.id);
  const keys = await prisma.idempotencyKey.findMany({ where: { key } });
  expect(keys.map((k) => k.purchaseId)).toEqual([second.purchase.id]);
  expect(keys[0]!.expiresAt.getTime()).toBeGreaterThan(Date.now());
  expect(await prisma.purchase.count({ where: { idempotencyKey: key } })).toBe(2);
});

test('when the relay has started a new purchase, then its outbox row is deleted', async () => {
  const key = randomUUID();
  const { purchase } = await createPurchase(deps, 'm_local', key, parse(purchaseBody(productId)));
  const row = await prisma.workflowStart.findUniqueOrThrow({ where: { purchaseId: purchase.id } });
  const started: string[] = [];
  const relay = createWorkflowStarter({
    prisma,
    sql,
    workflows: {
      start: (_type: unknown, options: { workflowId: string }) => {
        started.push(options.workflowId);
        return Promise.resolve();
      },
    } as unknown as StarterDeps['workflows'],
    connection: {
      withDeadline: (_d: number, fn: () => Promise<unknown>) => fn(),
      healthService: { check: () => Promise.resolve({ status: 1 }) },
    } as unknown as StarterDeps['connection'],
    config,
    logger: createLogger('t', 'silent'),
  });
  try {
    relay.kick(
      {
        workflowType: 'purchase',
        purchaseId: row.purchaseId,
        workflowId: row.workflowId,
        taskQueue: row.taskQueue,
        input: {} as never,
      },
      row.nextAttemptAt.getTime(),
    );

    await eventually(async () =>
      (await prisma.workflowStart.count({ where: { purchaseId: purchase.id } })) === 0
        ? true
        : undefined,
    );
    expect(started).toEqual([row.workflowId]);
  } finally {
    await relay.close();
  }
});
