import type { Producer } from 'kafkajs';
import { withTransaction } from '../common/db';
import type { PoolConnection, SqlPool } from '../common/db';
import type { Logger } from '../common/logger';
import type { RefundStatus } from '../workflows/contract';
import { DLQ_TOPIC, EVENTS_TOPIC, publish } from './events';
import type { EventInput } from './events';
import { recordRefundOn } from './purchases';

/*
 * The refunds table's one writer. The api creates a refund through `createRefundOn`,
 * inside the transaction that also holds its Idempotency-Key and its workflow's outbox
 * row; the refund's workflow (workflows/refund.ts) settles it through the activities.
 */

/** Statuses a refund can be refunded from: captured money not yet wholly refunded. */
const REFUNDABLE = ['APPROVED', 'PARTIALLY_REFUNDED'];

export interface NewRefund {
  refundId: string;
  purchaseId: string;
  merchantId: string;
  idempotencyKey: string;
  /** Absent means all that is left to refund. */
  amountMinor?: number;
  reason?: string;
  restock: boolean;
}

export type RefundCreation =
  | { outcome: 'created'; amountMinor: number; currency: string; paymentId: string }
  | { outcome: 'not_found' }
  | { outcome: 'invalid_state'; status: string }
  | { outcome: 'exceeds_captured'; refundable: number };

/**
 * Locks the purchase row, so two refunds of one purchase are decided one after the
 * other: the second sees the first's amount held and cannot take the sum over what was
 * captured. PENDING and SUCCEEDED refunds hold their amount, and so does a FAILED one that
 * is parked for an operator, because a retry may still move it.
 */
export async function createRefundOn(
  conn: PoolConnection,
  refund: NewRefund,
): Promise<RefundCreation> {
  const [purchase] = await conn.query<
    { status: string; captured: bigint | null; currency: string; paymentId: string | null }[]
  >(
    `SELECT status, amount_captured AS captured, currency, provider_charge_id AS paymentId
       FROM purchases WHERE id = ? AND merchant_id = ? FOR UPDATE`,
    [refund.purchaseId, refund.merchantId],
  );
  if (!purchase) return { outcome: 'not_found' };
  if (!REFUNDABLE.includes(purchase.status) || !purchase.paymentId || purchase.captured === null) {
    return { outcome: 'invalid_state', status: purchase.status };
  }
  const [held] = await conn.query<{ amount: string | number | bigint }[]>(
    `SELECT COALESCE(SUM(amount_minor), 0) AS amount FROM refunds
      WHERE purchase_id = ? AND (status IN ('PENDING', 'SUCCEEDED') OR parked)`,
    [refund.purchaseId],
  );
  const refundable = Number(purchase.captured) - Number(held?.amount ?? 0);
  const amountMinor = refund.amountMinor ?? refundable;
  if (amountMinor <= 0 || amountMinor > refundable) {
    return { outcome: 'exceeds_captured', refundable: Math.max(0, refundable) };
  }
  await conn.query(
    `INSERT INTO refunds (id, purchase_id, merchant_id, idempotency_key, amount_minor, currency,
       status, reason, restock, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, 'PENDING', ?, ?, CURRENT_TIMESTAMP(3), CURRENT_TIMESTAMP(3))`,
    [
      refund.refundId,
      refund.purchaseId,
      refund.merchantId,
      refund.idempotencyKey,
      amountMinor,
      purchase.currency,
      refund.reason ?? null,
      refund.restock,
    ],
  );
  return {
    outcome: 'created',
    amountMinor,
    currency: purchase.currency,
    paymentId: purchase.paymentId,
  };
}

/** Where the refund's provider call left it. */
export interface RefundSettlement {
  refundId: string;
  to: Exclude<RefundStatus, 'PENDING'>;
  /** A FAILED refund whose retries ran out waits for an operator's retry or cancel. */
  parked?: boolean;
  attempts: number;
  providerRefundId?: string;
  failure?: string;
  /** Published after the commit: to the events topic, or the dead-letter topic when parked. */
  event: EventInput;
}

export function createRefundActivities(deps: { sql: SqlPool; producer: Producer; logger: Logger }) {
  const { sql, producer, logger } = deps;
  return {
    /**
     * The refund's final status, and on success the purchase's refunded amount and stock,
     * in one transaction; then the event. Only a PENDING refund (or a parked one being
     * canceled) changes, so a repeat of the step moves no amount twice.
     */
    async settleRefund(settlement: RefundSettlement): Promise<void> {
      await withTransaction(sql, async (conn) => {
        const [row] = await conn.query<
          {
            status: RefundStatus;
            parked: number;
            purchaseId: string;
            amountMinor: bigint;
            restock: number;
          }[]
        >(
          `SELECT status, parked, purchase_id AS purchaseId, amount_minor AS amountMinor, restock
             FROM refunds WHERE id = ? FOR UPDATE`,
          [settlement.refundId],
        );
        if (!row) throw new Error(`refund ${settlement.refundId} does not exist`);
        const open = row.status === 'PENDING' || (row.status === 'FAILED' && row.parked === 1);
        if (!open) return;
        await conn.query(
          `UPDATE refunds SET status = ?, parked = ?, attempts = ?, failure = ?,
             provider_refund_id = COALESCE(?, provider_refund_id), updated_at = CURRENT_TIMESTAMP(3)
           WHERE id = ?`,
          [
            settlement.to,
            settlement.parked ?? false,
            settlement.attempts,
            settlement.failure?.slice(0, 500) ?? null,
            settlement.providerRefundId ?? null,
            settlement.refundId,
          ],
        );
        if (settlement.to === 'SUCCEEDED') {
          await recordRefundOn(conn, logger, {
            purchaseId: row.purchaseId,
            refundId: settlement.refundId,
            amountMinor: Number(row.amountMinor),
            restock: row.restock === 1,
          });
        }
      });
      await publish(producer, settlement.parked ? DLQ_TOPIC : EVENTS_TOPIC, settlement.event);
    },

    /** An operator's retry of a parked refund: back to PENDING before the provider is asked again. */
    async reopenRefund(refundId: string): Promise<void> {
      await sql.query(
        `UPDATE refunds SET status = 'PENDING', parked = false, updated_at = CURRENT_TIMESTAMP(3)
          WHERE id = ? AND status = 'FAILED' AND parked`,
        [refundId],
      );
    },
  };
}
