import { randomUUID } from 'node:crypto';
import type { WorkflowClient } from '@temporalio/client';
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createRefundOn } from '../../activities/refunds';
import { withTransaction } from '../../common/db';
import { AppError, conflict, notFound, unprocessable } from '../../common/errors';
import type { Refund } from '../../generated/prisma/client';
import {
  AMOUNT_EXCEEDS_AUTHORIZED,
  captureUpdate,
  INVALID_STATE,
  refundWorkflowIdFor,
  voidUpdate,
} from '../../workflows/contract';
import type { AuthorizationDecision, RefundInput } from '../../workflows/contract';
import { requestHash } from './request';
import type { PurchaseDeps, PurchaseView } from './service';
import { findKey, isKeyRace, keyExpiry, keyInsert, loadView, retryPolicy } from './service';
import type { KeyRecord } from './service';
import { startInsert } from './starter';

/*
 * Capture, void and refunds of a purchase. Each takes an Idempotency-Key with the
 * semantics of POST /v1/purchases: the same key and body again is a replay, the same key
 * with another body is 422 idempotency_key_reused. Keys share one namespace per merchant
 * with purchases, as a provider's do.
 */

export interface OperationDeps extends PurchaseDeps {
  /** Capture and void updates; webhook redeliveries start workflows. */
  workflows: Pick<WorkflowClient, 'getHandle' | 'start'>;
}

export type Decision = { kind: 'capture'; amount?: number } | { kind: 'void' };

export interface OperationAnswer<T> {
  /** 200 once done, 202 while the provider is still being asked. */
  status: 200 | 202;
  body: T;
  replayed: boolean;
}

const invalidState = (status: string, message?: string): AppError =>
  conflict('invalid_state', message ?? `the purchase is ${status}`, { status });

/** Holds the key for this request, or finds it held: by this request (a replay) or another. */
async function holdKey(
  deps: OperationDeps,
  merchantId: string,
  key: string,
  purchaseId: string,
  hash: string,
  /** The caller's read of the key, so the request reads it once. */
  existing: KeyRecord | undefined,
): Promise<{ replayed: boolean }> {
  const check = (record: KeyRecord): { replayed: boolean } => {
    if (record.requestHash !== hash) {
      throw unprocessable(
        'idempotency_key_reused',
        `this Idempotency-Key was used for another request`,
        { purchaseId: record.purchaseId },
      );
    }
    return { replayed: true };
  };
  if (existing && existing.expiresAt > new Date()) return check(existing);
  try {
    await deps.sql.query(
      `INSERT INTO idempotency_keys (merchant_id, idempotency_key, request_hash, purchase_id,
         expires_at, created_at) VALUES (?, ?, ?, ?, ?, CURRENT_TIMESTAMP(3))
       ON DUPLICATE KEY UPDATE request_hash = IF(expires_at < CURRENT_TIMESTAMP(3),
         VALUES(request_hash), request_hash), purchase_id = IF(expires_at < CURRENT_TIMESTAMP(3),
         VALUES(purchase_id), purchase_id), expires_at = IF(expires_at < CURRENT_TIMESTAMP(3),
         VALUES(expires_at), expires_at)`,
      [merchantId, key, hash, purchaseId, keyExpiry(deps.config)],
    );
  } catch (err) {
    if (!isKeyRace(err)) throw err;
  }
  const held = await findKey(deps, merchantId, key);
  if (!held) throw new Error('an idempotency key vanished after it was written');
  return held.requestHash === hash ? { replayed: false } : check(held);
}

/**
 * Captures or voids a manual purchase through its workflow's update. The update id comes
 * from the key, so a retried request joins the first one's update instead of making a
 * second; once the workflow has closed, the answer comes from the purchase's row.
 */
export async function decideAuthorization(
  deps: OperationDeps,
  merchantId: string,
  purchaseId: string,
  key: string,
  decision: Decision,
): Promise<OperationAnswer<PurchaseView>> {
  const view = await loadView(deps, merchantId, purchaseId);
  const hash = requestHash({ operation: decision.kind, purchaseId, ...decision });
  const existing = await findKey(deps, merchantId, key);
  const fresh = !existing || existing.expiresAt <= new Date();
  // A fresh request on the wrong status writes nothing: its retry is refused alike.
  if (fresh && view.status !== 'AUTHORIZED') throw invalidState(view.status);
  const amount = decision.kind === 'capture' ? (decision.amount ?? view.amount) : undefined;
  if (amount !== undefined && amount > view.amount) {
    throw unprocessable('amount_exceeds_authorized', `at most ${view.amount} can be captured`, {
      authorized: view.amount,
    });
  }
  const { replayed } = await holdKey(deps, merchantId, key, purchaseId, hash, existing);

  const handle = deps.workflows.getHandle(`purchase:${purchaseId}`);
  const updateId = `${decision.kind}:${hash}`;
  let answer: AuthorizationDecision | undefined;
  try {
    const accepted =
      amount !== undefined
        ? handle.startUpdate(captureUpdate, {
            args: [{ amountMinor: amount }],
            updateId,
            waitForStage: WorkflowUpdateStage.ACCEPTED,
          })
        : handle.startUpdate(voidUpdate, { updateId, waitForStage: WorkflowUpdateStage.ACCEPTED });
    const outcome = accepted.then((update) => update.result());
    // Past the wait it goes on without this request; a retry of it joins the same update.
    outcome.catch(() => undefined);
    answer = await waitAtMost(outcome, deps.config.OPERATION_WAIT_MS);
  } catch (err) {
    const done = decision.kind === 'capture' ? 'APPROVED' : 'VOIDED';
    if (isClosed(err)) {
      const now = await loadView(deps, merchantId, purchaseId);
      // Closed by this decision (a replay), or by another one.
      if (now.status === done || (done === 'APPROVED' && now.amountCaptured !== null)) {
        return { status: 200, body: now, replayed: true };
      }
      throw invalidState(now.status);
    }
    const refused = refusalOf(err);
    if (refused?.type === INVALID_STATE) throw invalidState(refused.status, refused.message);
    if (refused?.type === AMOUNT_EXCEEDS_AUTHORIZED) {
      throw unprocessable('amount_exceeds_authorized', refused.message);
    }
    throw err;
  }
  const now = await loadView(deps, merchantId, purchaseId);
  if (!answer) return { status: 202, body: now, replayed };
  if (answer.outcome === 'refused') {
    throw new AppError(402, `${decision.kind}_refused`, `the provider refused: ${answer.reason}`, {
      reason: answer.reason,
      status: now.status,
    });
  }
  return { status: 200, body: now, replayed };
}

function waitAtMost<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function isClosed(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  // Temporal answers an update to a closed run with NOT_FOUND or FAILED_PRECONDITION.
  const message = err instanceof Error ? err.message : '';
  return /workflow execution already completed|not found/i.test(message);
}

function refusalOf(err: unknown): { type: string; message: string; status: string } | undefined {
  if (!(err instanceof WorkflowUpdateFailedError)) return undefined;
  const cause = err.cause;
  if (!(cause instanceof ApplicationFailure) || !cause.type) return undefined;
  const details = cause.details?.[0] as { status?: string } | undefined;
  return { type: cause.type, message: cause.message, status: details?.status ?? 'unknown' };
}

export interface RefundView {
  id: string;
  purchaseId: string;
  status: string;
  amount: number;
  currency: string;
  reason: string | null;
  restock: boolean;
  failure: string | null;
  createdAt: string;
  updatedAt: string;
  links: { self: string; purchase: string };
}

export function toRefundView(row: Refund): RefundView {
  return {
    id: row.id,
    purchaseId: row.purchaseId,
    status: row.status,
    amount: Number(row.amountMinor),
    currency: row.currency,
    reason: row.reason,
    restock: row.restock,
    failure: row.failure,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    links: { self: `/v1/refunds/${row.id}`, purchase: `/v1/purchases/${row.purchaseId}` },
  };
}

/**
 * Creates a refund once per key: the refund row (its amount checked against what is left
 * to refund, under the purchase's row lock), the key and the outbox row of its workflow in
 * one transaction. The relay starts the workflow, so an accepted refund never stays
 * PENDING for want of one.
 */
export async function createRefund(
  deps: OperationDeps,
  merchantId: string,
  purchaseId: string,
  key: string,
  body: { amount?: number; reason?: string; restock: boolean },
): Promise<OperationAnswer<RefundView>> {
  const hash = requestHash({ operation: 'refund', purchaseId, ...body });
  const replay = async (record: KeyRecord): Promise<OperationAnswer<RefundView>> => {
    const row = await deps.prisma.refund.findUnique({
      where: { merchantId_idempotencyKey: { merchantId, idempotencyKey: key } },
    });
    if (record.requestHash !== hash || !row) {
      throw unprocessable(
        'idempotency_key_reused',
        'this Idempotency-Key was used for another request',
      );
    }
    return { status: 202, body: toRefundView(row), replayed: true };
  };
  const existing = await findKey(deps, merchantId, key);
  if (existing && existing.expiresAt > new Date()) return replay(existing);
  deps.starter.ensureAvailable();

  const refundId = `re_${randomUUID().replace(/-/g, '')}`;
  try {
    const kicked = await withTransaction(deps.sql, async (conn) => {
      if (existing) {
        await conn.query(
          'DELETE FROM idempotency_keys WHERE merchant_id = ? AND idempotency_key = ? AND expires_at = ?',
          [merchantId, key, existing.expiresAt],
        );
      }
      const created = await createRefundOn(conn, {
        refundId,
        purchaseId,
        merchantId,
        idempotencyKey: key,
        amountMinor: body.amount,
        reason: body.reason,
        restock: body.restock,
      });
      if (created.outcome === 'not_found') throw notFound('purchase');
      if (created.outcome === 'invalid_state') throw invalidState(created.status);
      if (created.outcome === 'exceeds_captured') {
        throw unprocessable(
          'refund_exceeds_captured',
          `at most ${created.refundable} is left to refund`,
          { refundable: created.refundable },
        );
      }
      const keyRow = keyInsert(deps.config, { merchantId, key, hash, purchaseId });
      await conn.query(keyRow.sql, keyRow.values);
      const input: RefundInput = {
        refundId,
        purchaseId,
        merchantId,
        paymentId: created.paymentId,
        amountMinor: created.amountMinor,
        currency: created.currency,
        restock: body.restock,
        paymentsTaskQueue: deps.config.PAYMENTS_TASK_QUEUE,
        retry: retryPolicy(deps.config),
      };
      const start = {
        workflowType: 'refund' as const,
        purchaseId: refundId,
        workflowId: refundWorkflowIdFor(refundId),
        taskQueue: deps.config.PURCHASES_TASK_QUEUE,
        namespace: deps.config.TEMPORAL_NAMESPACE,
        input,
      };
      const outbox = startInsert(start, await deps.starter.seal(input));
      await conn.query(outbox.insert.sql, outbox.insert.values);
      return { start, leaseUntil: outbox.leaseUntil };
    });
    deps.starter.kick(kicked.start, kicked.leaseUntil);
  } catch (err) {
    if (!isKeyRace(err)) throw err;
    // A concurrent request with the same key won: answer as its replay.
    const winner = await findKey(deps, merchantId, key);
    if (!winner) throw err;
    return replay(winner);
  }
  const row = await deps.prisma.refund.findUniqueOrThrow({ where: { id: refundId } });
  return { status: 202, body: toRefundView(row), replayed: false };
}

export async function listRefunds(
  deps: OperationDeps,
  merchantId: string,
  purchaseId: string,
): Promise<{ data: RefundView[] }> {
  await loadView(deps, merchantId, purchaseId);
  const rows = await deps.prisma.refund.findMany({
    where: { purchaseId, merchantId },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
  });
  return { data: rows.map(toRefundView) };
}

export async function getRefund(
  deps: OperationDeps,
  merchantId: string,
  refundId: string,
): Promise<RefundView> {
  const row = await deps.prisma.refund.findFirst({ where: { id: refundId, merchantId } });
  if (!row) throw notFound('refund');
  return toRefundView(row);
}
