import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Producer } from 'kafkajs';
import { SqlError } from 'mariadb';
import type { Purchase } from '../generated/prisma/client';
import { SQL_ERRNO, transact, withTransaction } from '../common/db';
import type { PoolConnection, PrismaClient, SqlPool, Statement } from '../common/db';
import type { Logger } from '../common/logger';
import { allowedFrom, workflowIdFor } from '../workflows/contract';
import type { Actor, PurchaseInput, PurchaseLine, PurchaseStatus } from '../workflows/contract';
import { DLQ_TOPIC, EVENTS_TOPIC, publish } from './events';
import type { EventInput } from './events';
import { purchaseFingerprint } from './fingerprint';
import type { FingerprintInput } from './fingerprint';

export interface StatusChange {
  purchaseId: string;
  to: PurchaseStatus;
  /** Operator-only transitions (workflows/contract.ts TRANSITIONS) need 'operator'. */
  by?: Actor;
  /** Who asked, for the timeline: an operator's name or Temporal's client identity. */
  actor?: string;
  /** The timeline's reason, when it says more than the purchase's `reason` code. */
  note?: string;
  reason?: string;
  attempts?: number;
  lastError?: string;
  chargeId?: string;
  duplicateOf?: string;
  /** A manual purchase's authorization at the provider. */
  authorizationId?: string;
  /** What was captured, on the move to APPROVED. */
  amountCaptured?: number;
}

/** A purchase as it starts: what insertPurchase writes and what the api's 202 shows. */
export type NewPurchase = Purchase & { items: PurchaseLine[] };

export function newPurchase(input: PurchaseInput, workflowId: string): NewPurchase {
  const createdAt = new Date(input.createdAt);
  return {
    id: input.purchaseId,
    merchantId: input.merchantId,
    customerId: input.customerId,
    idempotencyKey: input.idempotencyKey,
    workflowId,
    amountMinor: BigInt(input.amountMinor),
    currency: input.currency,
    status: 'RECEIVED',
    reason: null,
    duplicateOf: null,
    attempts: 0,
    lastError: null,
    providerChargeId: null,
    captureMethod: input.captureMethod ?? 'automatic',
    providerAuthorizationId: null,
    amountCaptured: null,
    amountRefunded: 0n,
    metadata: input.metadata ?? null,
    version: 1,
    createdAt,
    updatedAt: createdAt,
    items: input.items,
  };
}

/**
 * The writes of a purchase, its lines and its RECEIVED event, as statements for one
 * transaction in one round trip (`transact` in common/db.ts): the api's intake, and
 * shape 2's persistPurchase.
 */
export function purchaseInserts(row: NewPurchase): Statement[] {
  const { items } = row;
  return [
    {
      sql: `INSERT INTO purchases (id, merchant_id, customer_id, idempotency_key, workflow_id,
        amount_minor, currency, status, reason, duplicate_of, attempts, last_error,
        provider_charge_id, capture_method, metadata, version, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      values: [
        row.id,
        row.merchantId,
        row.customerId,
        row.idempotencyKey,
        row.workflowId,
        row.amountMinor,
        row.currency,
        row.status,
        row.reason,
        row.duplicateOf,
        row.attempts,
        row.lastError,
        row.providerChargeId,
        row.captureMethod,
        row.metadata === null ? null : JSON.stringify(row.metadata),
        row.version,
        row.createdAt,
        row.updatedAt,
      ],
    },
    {
      sql: `INSERT INTO purchase_items (purchase_id, line, product_id, quantity, unit_price_minor)
        VALUES ${items.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
      values: items.flatMap((item, line) => [
        row.id,
        line,
        item.productId,
        item.quantity,
        item.unitPriceMinor,
      ]),
    },
    {
      sql: 'INSERT INTO purchase_events (purchase_id, to_status, created_at) VALUES (?, ?, ?)',
      values: [row.id, 'RECEIVED', row.createdAt],
    },
  ];
}

/** Total quantity per product, in a fixed order so concurrent reservations lock rows alike. */
function quantitiesByProduct(items: PurchaseLine[]): [string, number][] {
  const totals = new Map<string, number>();
  for (const item of items)
    totals.set(item.productId, (totals.get(item.productId) ?? 0) + item.quantity);
  return [...totals].sort(([a], [b]) => (a < b ? -1 : 1));
}

interface Written {
  affectedRows: number;
}

/*
 * The purchase's SQL, each on a connection inside the caller's transaction
 * (common/db.ts withTransaction), through the bare driver.
 */

/** Holds the fingerprint for the window; the id of an earlier holder, or undefined. */
async function claimOn(
  conn: PoolConnection,
  input: FingerprintInput & { purchaseId: string; windowMs: number },
): Promise<string | undefined> {
  const fingerprint = purchaseFingerprint(input);
  // Takes the row lock first, so two concurrent claims cannot both win.
  await conn.query(
    `INSERT INTO purchase_fingerprints (fingerprint, purchase_id, expires_at)
     VALUES (?, ?, CURRENT_TIMESTAMP(3) + INTERVAL ? MICROSECOND)
     ON DUPLICATE KEY UPDATE
       purchase_id = IF(expires_at < CURRENT_TIMESTAMP(3), VALUES(purchase_id), purchase_id),
       expires_at = IF(expires_at < CURRENT_TIMESTAMP(3), VALUES(expires_at), expires_at)`,
    [fingerprint, input.purchaseId, input.windowMs * 1000],
  );
  const [holder] = await conn.query<{ purchase_id: string }[]>(
    'SELECT purchase_id FROM purchase_fingerprints WHERE fingerprint = ?',
    [fingerprint],
  );
  return holder && holder.purchase_id !== input.purchaseId ? holder.purchase_id : undefined;
}

/**
 * All lines or none, with a conditional decrement per product. False when a product is
 * short; the caller then rolls back what this wrote.
 */
async function reserveOn(
  conn: PoolConnection,
  purchaseId: string,
  items: PurchaseLine[],
): Promise<boolean> {
  const [already] = await conn.query<unknown[]>(
    'SELECT 1 FROM stock_reservations WHERE purchase_id = ?',
    [purchaseId],
  );
  if (already) return true;
  for (const [productId, quantity] of quantitiesByProduct(items)) {
    const updated = await conn.query<Written>(
      `UPDATE products SET stock = stock - ?, version = version + 1
       WHERE id = ? AND stock >= ?`,
      [quantity, productId, quantity],
    );
    if (updated.affectedRows !== 1) return false;
  }
  await conn.query(
    'INSERT INTO stock_reservations (purchase_id, created_at) VALUES (?, CURRENT_TIMESTAMP(3))',
    [purchaseId],
  );
  return true;
}

/** Compensation for reserveOn; releasing twice gives the stock back once. */
async function releaseOn(conn: PoolConnection, purchaseId: string): Promise<void> {
  const released = await conn.query<Written>(
    `UPDATE stock_reservations SET released_at = CURRENT_TIMESTAMP(3)
     WHERE purchase_id = ? AND released_at IS NULL`,
    [purchaseId],
  );
  if (released.affectedRows !== 1) return;
  const items = await conn.query<PurchaseLine[]>(
    'SELECT product_id AS productId, quantity FROM purchase_items WHERE purchase_id = ?',
    [purchaseId],
  );
  for (const [productId, quantity] of quantitiesByProduct(items)) {
    await conn.query('UPDATE products SET stock = stock + ?, version = version + 1 WHERE id = ?', [
      quantity,
      productId,
    ]);
  }
}

/**
 * Moves the purchase to a status and appends the change to its timeline, only from the
 * statuses TRANSITIONS allows (workflows/contract.ts). The same change repeated (a retried
 * step) is a no-op; any other is refused with a non-retryable TransitionRefused.
 */
async function transitionOn(
  conn: PoolConnection,
  logger: Logger,
  change: StatusChange,
): Promise<void> {
  const { purchaseId, to } = change;
  const [row] = await conn.query<{ status: PurchaseStatus }[]>(
    'SELECT status FROM purchases WHERE id = ? FOR UPDATE',
    [purchaseId],
  );
  if (!row) throw new Error(`purchase ${purchaseId} does not exist`);
  if (row.status === to) return;
  const by = change.by ?? 'workflow';
  if (!allowedFrom(to, by).includes(row.status)) {
    logger.error({ purchaseId, from: row.status, to, by }, 'status transition refused');
    throw ApplicationFailure.create({
      type: 'TransitionRefused',
      message: `purchase ${purchaseId} cannot move from ${row.status} to ${to}`,
      details: [{ purchaseId, from: row.status, to }],
      nonRetryable: true,
    });
  }
  const lastError = change.lastError?.slice(0, 500);
  await conn.query(
    `INSERT INTO purchase_events (purchase_id, from_status, to_status, reason, actor, created_at)
     VALUES (?, ?, ?, ?, ?, CURRENT_TIMESTAMP(3))`,
    [
      purchaseId,
      row.status,
      to,
      change.note ?? change.reason ?? lastError ?? null,
      change.actor ?? null,
    ],
  );
  await conn.query(
    `UPDATE purchases SET status = ?, reason = ?, version = version + 1,
       updated_at = CURRENT_TIMESTAMP(3),
       attempts = COALESCE(?, attempts), last_error = COALESCE(?, last_error),
       provider_charge_id = COALESCE(?, provider_charge_id),
       duplicate_of = COALESCE(?, duplicate_of),
       provider_authorization_id = COALESCE(?, provider_authorization_id),
       amount_captured = COALESCE(?, amount_captured, IF(? = 'APPROVED', amount_minor, NULL))
     WHERE id = ?`,
    [
      to,
      change.reason ?? null,
      change.attempts ?? null,
      lastError ?? null,
      change.chargeId ?? null,
      change.duplicateOf ?? null,
      change.authorizationId ?? null,
      // A charge (any workflow shape) captures the whole amount; a capture says how much.
      change.amountCaptured ?? null,
      to,
      purchaseId,
    ],
  );
}

class OutOfStock extends Error {}

/** How admission decided; a repeat of the step finds and returns the same decision. */
export type Admission =
  | { outcome: 'admitted' }
  | { outcome: 'duplicate'; duplicateOf: string }
  | { outcome: 'rejected'; reason: 'out_of_stock' };

/** Where a charge left the purchase, for the step after it. */
export interface Settlement {
  change: StatusChange & {
    to: 'APPROVED' | 'DECLINED' | 'FAILED' | 'CANCELED' | 'AUTHORIZED' | 'VOIDED';
  };
  /** Gives the reserved stock back first (a decline or a cancel). */
  release?: boolean;
  /** Published after the commit, to the events topic or to the dead-letter topic. */
  event: EventInput;
  topic: 'events' | 'dead-letter';
}

export interface PurchaseActivityDeps {
  /** Only persistPurchase, a shape-2 step, still writes through Prisma. */
  prisma: PrismaClient;
  sql: SqlPool;
  producer: Producer;
  logger: Logger;
}

export function createPurchaseActivities(deps: PurchaseActivityDeps) {
  const { prisma, sql, producer, logger } = deps;
  const inTransaction = <T>(work: (conn: PoolConnection) => Promise<T>) =>
    withTransaction(sql, work);
  return {
    /**
     * Shape 3, before the charge, as one local activity: the fingerprint claim, the stock
     * reservation and the move out of RECEIVED in one transaction, then the event. A
     * repeat (the event failed, the worker died) reads the decision already committed and
     * publishes the same event again, under the same event id.
     */
    async admit(input: PurchaseInput, run: { workflowId: string; runId: string }) {
      const { purchaseId } = input;
      const admission = await inTransaction(async (conn): Promise<Admission> => {
        const [row] = await conn.query<{ status: PurchaseStatus; duplicate_of: string | null }[]>(
          'SELECT status, duplicate_of FROM purchases WHERE id = ? FOR UPDATE',
          [purchaseId],
        );
        if (!row) {
          // The api writes the rows in the transaction that queues the start.
          throw ApplicationFailure.create({
            type: 'PurchaseMissing',
            message: `purchase ${purchaseId} has no row`,
            nonRetryable: true,
          });
        }
        if (row.status !== 'RECEIVED') return decided(purchaseId, row);
        const original = await claimOn(conn, {
          ...input,
          windowMs: input.dedupWindowMs,
        });
        if (original) {
          await transitionOn(conn, logger, {
            purchaseId,
            to: 'DUPLICATE',
            reason: 'duplicate_purchase',
            duplicateOf: original,
          });
          return { outcome: 'duplicate', duplicateOf: original };
        }
        await conn.query('SAVEPOINT reserve');
        if (!(await reserveOn(conn, purchaseId, input.items))) {
          await conn.query('ROLLBACK TO SAVEPOINT reserve');
          await transitionOn(conn, logger, { purchaseId, to: 'REJECTED', reason: 'out_of_stock' });
          return { outcome: 'rejected', reason: 'out_of_stock' };
        }
        await transitionOn(conn, logger, { purchaseId, to: 'PROCESSING' });
        return { outcome: 'admitted' };
      });
      const { amountMinor, currency, items } = input;
      const [type, data] =
        admission.outcome === 'duplicate'
          ? ['purchase.duplicate', { duplicateOf: admission.duplicateOf }]
          : admission.outcome === 'rejected'
            ? ['purchase.rejected', { reason: admission.reason }]
            : ['purchase.requested', { amountMinor, currency, items }];
      await publish(producer, EVENTS_TOPIC, {
        type,
        attempt: 1,
        occurredAt: new Date().toISOString(),
        purchaseId,
        merchantId: input.merchantId,
        ...run,
        data,
      });
      return admission;
    },

    /**
     * Shape 3, after the charge (or on a cancel), as one local activity: the compensation
     * and the status change in one transaction, then the event.
     */
    async settle(settlement: Settlement): Promise<void> {
      await inTransaction(async (conn) => {
        if (settlement.release) await releaseOn(conn, settlement.change.purchaseId);
        await transitionOn(conn, logger, settlement.change);
      });
      const topic = settlement.topic === 'events' ? EVENTS_TOPIC : DLQ_TOPIC;
      await publish(producer, topic, settlement.event);
    },

    /** Step 1 of shape 2. The api writes the row already; shape 3 relies on that. */
    async persistPurchase(input: PurchaseInput): Promise<void> {
      const existing = await prisma.purchase.findUnique({
        where: { id: input.purchaseId },
        select: { id: true },
      });
      if (existing) return;
      const workflowId =
        Context.current().info.workflowExecution?.workflowId ?? workflowIdFor(input.purchaseId);
      try {
        await transact(sql, purchaseInserts(newPurchase(input, workflowId)));
      } catch (err) {
        // Written in the meantime by another attempt of this step: the same rows.
        const raced = err instanceof SqlError && err.errno === SQL_ERRNO.duplicateKey;
        if (!raced) throw err;
      }
    },

    /** A status change on its own: shape 2's steps, and an operator's retry in shape 3. */
    async recordStatus(change: StatusChange): Promise<void> {
      await inTransaction((conn) => transitionOn(conn, logger, change));
    },

    /** The identity Temporal recorded with this run's cancellation request, if any. */
    async cancelRequester(run: { workflowId: string; runId: string }): Promise<string | undefined> {
      const history = await Context.current()
        .client.workflow.getHandle(run.workflowId, run.runId)
        .fetchHistory();
      const requested = history.events?.find(
        (e) => e.workflowExecutionCancelRequestedEventAttributes,
      );
      return requested?.workflowExecutionCancelRequestedEventAttributes?.identity || undefined;
    },

    /** Step 2 of shape 2: the id of an earlier purchase with this fingerprint, if any. */
    async claimFingerprint(
      input: FingerprintInput & { purchaseId: string; windowMs: number },
    ): Promise<string | undefined> {
      return inTransaction((conn) => claimOn(conn, input));
    },

    /** Step 3 of shape 2. */
    async reserveStock(input: { purchaseId: string; items: PurchaseLine[] }): Promise<boolean> {
      try {
        await inTransaction(async (conn) => {
          if (!(await reserveOn(conn, input.purchaseId, input.items))) throw new OutOfStock();
        });
        return true;
      } catch (err) {
        if (err instanceof OutOfStock) return false;
        throw err;
      }
    },

    /** Compensation for reserveStock (shape 2). */
    async releaseStock(purchaseId: string): Promise<void> {
      await inTransaction((conn) => releaseOn(conn, purchaseId));
    },

    async publishEvent(input: EventInput): Promise<void> {
      await publish(producer, EVENTS_TOPIC, input);
    },

    async publishDeadLetter(input: EventInput): Promise<void> {
      await publish(producer, DLQ_TOPIC, input);
    },
  };
}

/** The decision an earlier attempt of admit committed, read back from the purchase row. */
function decided(
  purchaseId: string,
  row: { status: PurchaseStatus; duplicate_of: string | null },
): Admission {
  if (row.status === 'DUPLICATE' && row.duplicate_of) {
    return { outcome: 'duplicate', duplicateOf: row.duplicate_of };
  }
  if (row.status === 'REJECTED') return { outcome: 'rejected', reason: 'out_of_stock' };
  if (row.status === 'PROCESSING') return { outcome: 'admitted' };
  throw ApplicationFailure.create({
    type: 'TransitionRefused',
    message: `purchase ${purchaseId} is ${row.status}; it cannot be admitted`,
    details: [{ purchaseId, from: row.status, to: 'PROCESSING' }],
    nonRetryable: true,
  });
}

/**
 * A refund that succeeded, on its purchase (inside the refund's settlement transaction):
 * adds it to the refunded amount and moves the status to PARTIALLY_REFUNDED or REFUNDED.
 * `restock` gives the purchase's reserved stock back, once.
 */
export async function recordRefundOn(
  conn: PoolConnection,
  logger: Logger,
  refund: { purchaseId: string; refundId: string; amountMinor: number; restock: boolean },
): Promise<void> {
  const { purchaseId } = refund;
  await conn.query(
    `UPDATE purchases SET amount_refunded = amount_refunded + ?, version = version + 1,
       updated_at = CURRENT_TIMESTAMP(3) WHERE id = ?`,
    [refund.amountMinor, purchaseId],
  );
  const [row] = await conn.query<{ refunded: bigint; captured: bigint | null }[]>(
    'SELECT amount_refunded AS refunded, amount_captured AS captured FROM purchases WHERE id = ?',
    [purchaseId],
  );
  const full = row !== undefined && row.captured !== null && row.refunded >= row.captured;
  await transitionOn(conn, logger, {
    purchaseId,
    to: full ? 'REFUNDED' : 'PARTIALLY_REFUNDED',
    note: `refund ${refund.refundId}`,
  });
  if (refund.restock) await releaseOn(conn, purchaseId);
}

/**
 * A purchase's status and version as they are now, for readers outside the workflow: the
 * webhook dispatcher puts them in each webhook so a receiver can drop a stale one.
 */
export async function purchaseState(
  prisma: PrismaClient,
  purchaseId: string,
): Promise<{ status: PurchaseStatus; version: number } | undefined> {
  const row = await prisma.purchase.findUnique({
    where: { id: purchaseId },
    select: { status: true, version: true },
  });
  return row ? { status: row.status as PurchaseStatus, version: row.version } : undefined;
}
