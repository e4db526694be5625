import { randomUUID } from 'node:crypto';
import { createPurchaseBody } from '../../api/purchases/request';
import { createPurchase } from '../../api/purchases/service';
import { createLogger } from '../../common/logger';
import { createPurchaseActivities } from '../../activities';
import { eventually } from '../config';
import type { Platform } from './harness';
import { createProduct, idleStarter, post, purchaseBody, startPlatform } from './harness';
import {
  chargesFor,
  finalState,
  ledger,
  opsCli,
  stockOf,
  temporalCli,
  timelineOf,
} from './helpers';

/*
 * The money-moves-once guarantees at the edges a new user finds: an expired key reused,
 * a start repeated after the purchase ended, a cancel from Temporal, answers that never
 * arrive, and activities that come late.
 */
const FINAL = ['APPROVED', 'DECLINED', 'REJECTED', 'DUPLICATE', 'FAILED', 'CANCELED'];

let platform: Platform;
beforeAll(async () => {
  platform = await startPlatform();
});
afterAll(() => platform.close());

const purchaseRow = (id: string) => platform.prisma.purchase.findUniqueOrThrow({ where: { id } });

async function runsOf(purchaseId: string): Promise<number> {
  const { count } = await platform.client.workflow.count(`PurchaseId = '${purchaseId}'`);
  return count;
}

test('when an expired Idempotency-Key is reused for a new purchase, then the new purchase gets a charge of its own', async () => {
  const productId = await createProduct(platform.prisma);
  const key = randomUUID();
  const first = await post(platform, purchaseBody(productId), { key });
  await finalState(platform, first.json.id as string, ['APPROVED']);
  await platform.prisma.idempotencyKey.updateMany({
    where: { key },
    data: { expiresAt: new Date(Date.now() - 1000) },
  });
  const before = (await ledger(platform)).length;

  const second = await post(platform, purchaseBody(productId), { key });
  await finalState(platform, second.json.id as string, ['APPROVED']);

  expect(second.json.id).not.toBe(first.json.id);
  const charges = await ledger(platform);
  expect(charges).toHaveLength(before + 1);
  const [a, b] = [
    await purchaseRow(first.json.id as string),
    await purchaseRow(second.json.id as string),
  ];
  expect(b.providerChargeId).not.toBe(a.providerChargeId);
  expect(charges.map((c) => c.id)).toContain(b.providerChargeId);
});

test('when the outbox row of a purchase that already ended comes back, then no second run starts and it stays uncharged', async () => {
  const productId = await createProduct(platform.prisma, { stock: 1 });
  // Accepted by an api that did not start it, so the row can be read and put back later.
  const body = createPurchaseBody.parse(purchaseBody(productId));
  const { purchase } = await createPurchase(
    { ...platform, starter: idleStarter(platform.config), logger: createLogger('test', 'silent') },
    'm_local',
    randomUUID(),
    body,
  );
  const id = purchase.id;
  const row = await platform.prisma.workflowStart.update({
    where: { purchaseId: id },
    data: { nextAttemptAt: new Date() },
  });
  await finalState(platform, id, ['REJECTED']);
  // Restocked since, so a second run would reserve and charge.
  await platform.prisma.product.update({ where: { id: productId }, data: { stock: 10 } });
  const charges = (await ledger(platform)).length;

  // As if the relay's delete had failed: the row is back, unclaimed.
  await platform.prisma.workflowStart.create({
    data: { ...row, input: row.input as object, attempts: 0, nextAttemptAt: new Date() },
  });
  await eventually(
    async () =>
      (await platform.prisma.workflowStart.findUnique({ where: { purchaseId: id } })) === null
        ? true
        : undefined,
    30000,
  );

  expect(await runsOf(id)).toBe(1);
  expect((await purchaseRow(id)).status).toBe('REJECTED');
  expect(await stockOf(platform, productId)).toBe(10);
  expect(await ledger(platform)).toHaveLength(charges);
});

test('when a FAILED purchase is cancelled from Temporal, then it is CANCELED, its stock released and the cancel recorded', async () => {
  const productId = await createProduct(platform.prisma, { stock: 5 });
  const res = await post(platform, purchaseBody(productId, 'tok_down'));
  const id = res.json.id as string;
  await finalState(platform, id, ['FAILED']);
  expect(await stockOf(platform, productId)).toBe(3);

  await platform.client.workflow.getHandle((await purchaseRow(id)).workflowId).cancel();
  const done = await finalState(platform, id, ['CANCELED']);

  expect(done.reason).toBe('canceled_by_operator');
  expect(await stockOf(platform, productId)).toBe(5);
  const last = (done.timeline as { to: string; reason: string | null; actor: string | null }[]).at(
    -1,
  );
  expect(last).toMatchObject({ to: 'CANCELED', reason: 'canceled_from_temporal' });
  expect(last?.actor).toEqual(expect.any(String));
  // The ops CLI then says what happened instead of failing on a closed workflow.
  await expect(opsCli('dlq', 'cancel', id)).rejects.toMatchObject({
    stderr: expect.stringContaining('CANCELED') as unknown,
  });
});

test('when every answer of a recorded charge is lost, then reconciliation finds it and the purchase is APPROVED with one charge', async () => {
  const productId = await createProduct(platform.prisma);

  const res = await post(platform, purchaseBody(productId, 'tok_lost'));
  const done = await finalState(platform, res.json.id as string, FINAL);

  expect(done).toMatchObject({ status: 'APPROVED', attempts: 4 });
  const row = await purchaseRow(res.json.id as string);
  const charges = (await ledger(platform)).filter((c) => c.id === row.providerChargeId);
  expect(charges).toHaveLength(1);
});

test('when answers are lost and the lookup fails too, then the purchase is FAILED, and an operator retry approves it with the same one charge', async () => {
  const productId = await createProduct(platform.prisma);
  const res = await post(platform, purchaseBody(productId, 'tok_lost_lookup_3'));
  const id = res.json.id as string;
  await finalState(platform, id, FINAL);
  expect((await purchaseRow(id)).status).toBe('FAILED');
  const before = await ledger(platform);

  await opsCli('dlq', 'retry', id);
  const done = await finalState(platform, id, ['APPROVED']);

  expect(timelineOf(done)).toEqual(['RECEIVED', 'PROCESSING', 'FAILED', 'PROCESSING', 'APPROVED']);
  expect(await ledger(platform)).toEqual(before);
  expect(before.map((c) => c.id)).toContain((await purchaseRow(id)).providerChargeId);
});

test('when a late or repeated status change arrives for an APPROVED purchase, then it is refused and nothing changes', async () => {
  const productId = await createProduct(platform.prisma);
  const res = await post(platform, purchaseBody(productId));
  const id = res.json.id as string;
  await finalState(platform, id, ['APPROVED']);
  const activities = createPurchaseActivities({
    prisma: platform.prisma,
    sql: platform.sql,
    producer: undefined as never,
    logger: createLogger('test', 'silent'),
  });
  const events = await platform.prisma.purchaseEvent.count({ where: { purchaseId: id } });

  await expect(activities.recordStatus({ purchaseId: id, to: 'PROCESSING' })).rejects.toMatchObject(
    { type: 'TransitionRefused' },
  );
  await expect(
    activities.recordStatus({ purchaseId: id, to: 'FAILED', lastError: 'late' }),
  ).rejects.toMatchObject({ type: 'TransitionRefused' });
  // The same change again is a repeat, not a new transition.
  await activities.recordStatus({ purchaseId: id, to: 'APPROVED' });

  expect((await purchaseRow(id)).status).toBe('APPROVED');
  expect(await platform.prisma.purchaseEvent.count({ where: { purchaseId: id } })).toBe(events);
});

test('when a parked purchase was terminated, then the runbook reset brings it back and dlq cancel releases its stock', async () => {
  const productId = await createProduct(platform.prisma, { stock: 5 });
  const res = await post(platform, purchaseBody(productId, 'tok_down'));
  const id = res.json.id as string;
  await finalState(platform, id, ['FAILED']);
  const { workflowId } = await purchaseRow(id);
  await platform.client.workflow.getHandle(workflowId).terminate('test: skips compensation');
  expect(await stockOf(platform, productId)).toBe(3);

  await temporalCli(
    'workflow',
    'reset',
    '--workflow-id',
    workflowId,
    '--type',
    'LastWorkflowTask',
    '--reason',
    'repair after terminate',
  );
  await opsCli('dlq', 'cancel', workflowId, '--operator', 'alice', '--reason', 'customer left');
  const done = await finalState(platform, id, ['CANCELED']);

  expect(await stockOf(platform, productId)).toBe(5);
  expect((done.timeline as { actor: string | null; reason: string | null }[]).at(-1)).toMatchObject(
    { actor: 'alice', reason: 'customer left' },
  );
});

test('when a purchase is cancelled from Temporal while its charge is in flight, then the charge is not interrupted and it ends APPROVED', async () => {
  const productId = await createProduct(platform.prisma, { stock: 5 });
  const res = await post(platform, purchaseBody(productId, 'tok_slow_700'));
  const id = res.json.id as string;
  await finalState(platform, id, ['PROCESSING']);

  await platform.client.workflow.getHandle((await purchaseRow(id)).workflowId).cancel();
  const done = await finalState(platform, id, FINAL);

  expect(done.status).toBe('APPROVED');
  expect(await stockOf(platform, productId)).toBe(3);
  expect(await chargesFor(platform, id)).toHaveLength(1);
});
