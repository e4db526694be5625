import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { createWorkflowStarter } from '../../api/purchases/starter';
import { createPurchase } from '../../api/purchases/service';
import type { PurchaseDeps } from '../../api/purchases/service';
import { createPurchaseBody } from '../../api/purchases/request';
import { createLogger } from '../../common/logger';
import { eventually } from '../config';
import type { Platform } from './harness';
import { createProduct, idleStarter, purchaseBody, startPlatform } from './harness';
import { chargesFor, finalState } from './helpers';

/*
 * The workflow-start outbox. Every api's relay sweeps the one table (the stack's api
 * too), so these tests only wait for "some relay"; which one does not matter.
 */
let platform: Platform;
let productId: string;
beforeAll(async () => {
  platform = await startPlatform();
  productId = await createProduct(platform.prisma);
});
afterAll(() => platform.close());

const logger = createLogger('t', 'silent');

/** An api whose process dies right after the commit: the row is written, nothing started. */
async function acceptWithoutStarting(): Promise<string> {
  const deps: PurchaseDeps = {
    prisma: platform.prisma,
    sql: platform.sql,
    starter: idleStarter(platform.config),
    config: platform.config,
    logger,
    search: platform.search,
  };
  const body = createPurchaseBody.parse(purchaseBody(productId));
  const { purchase } = await createPurchase(deps, 'm_local', randomUUID(), body);
  return purchase.id;
}

const rowOf = (purchaseId: string) =>
  platform.prisma.workflowStart.findUnique({ where: { purchaseId } });

async function runsOf(workflowId: string): Promise<number> {
  const { count } = await platform.client.workflow.count(`WorkflowId = '${workflowId}'`);
  return count;
}

test('when an api dies between its commit and the start, then a relay starts the workflow once the lease runs out', async () => {
  const id = await acceptWithoutStarting();
  const row = await rowOf(id);
  expect(row).toMatchObject({ attempts: 0, taskQueue: platform.config.PURCHASES_TASK_QUEUE });
  // The lease of the dead api, run out.
  await platform.prisma.workflowStart.update({
    where: { purchaseId: id },
    data: { nextAttemptAt: new Date() },
  });

  const done = await finalState(platform, id, ['APPROVED']);

  expect(done.status).toBe('APPROVED');
  expect(await rowOf(id)).toBeNull();
  expect(await chargesFor(platform, id)).toHaveLength(1);
});

test('when a relay started a workflow but died before deleting its row, then the next one does not start it again', async () => {
  const id = await acceptWithoutStarting();
  const row = (await rowOf(id))!;
  await platform.prisma.workflowStart.update({
    where: { purchaseId: id },
    data: { nextAttemptAt: new Date() },
  });
  await finalState(platform, id, ['APPROVED']);
  // The same row back, as if the attempt that started it crashed before the delete.
  await platform.prisma.workflowStart.create({
    data: { ...row, input: row.input!, attempts: 1, nextAttemptAt: new Date() },
  });

  await eventually(async () => ((await rowOf(id)) === null ? true : undefined), 30000);

  expect(await runsOf(row.workflowId)).toBe(1);
  expect(await chargesFor(platform, id)).toHaveLength(1);
});

test('when a start fails, then the row keeps the error and a later sweep starts it', async () => {
  const id = await acceptWithoutStarting();
  const row = (await rowOf(id))!;
  const connection = Connection.lazy({ address: '127.0.0.1:1' });
  const broken = createWorkflowStarter({
    prisma: platform.prisma,
    sql: platform.sql,
    workflows: new Client({ connection }).workflow,
    connection,
    config: { ...platform.config, TEMPORAL_START_TIMEOUT_MS: 500 },
    logger,
  });
  try {
    broken.kick(
      {
        workflowType: 'purchase',
        purchaseId: id,
        workflowId: row.workflowId,
        taskQueue: row.taskQueue,
        input: row.input as never,
      },
      0,
    ); // a lease that is not this relay's, so it claims the row first
    const failed = await eventually(async () => {
      const r = await rowOf(id);
      return r?.lastError ? r : undefined;
    }, 10000);
    expect(failed.attempts).toBe(1);
  } finally {
    await broken.close();
    await connection.close();
  }

  const done = await finalState(platform, id, ['APPROVED']);

  expect(done.status).toBe('APPROVED');
  expect(await rowOf(id)).toBeNull();
  expect(await chargesFor(platform, id)).toHaveLength(1);
});
