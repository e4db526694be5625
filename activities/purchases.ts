import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Producer } from 'kafkajs';
import { Prisma } from '../generated/prisma/client';
import type { Purchase } from '../generated/prisma/client';
import type { PrismaClient } from '../common/db';
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
    metadata: input.metadata ?? null,
    version: 1,
    createdAt,
    updatedAt: createdAt,
    items: input.items,
  };
}

/**
 * The writes of a purchase, its lines and its RECEIVED event, for the caller to run in a
 * transaction. createMany is one INSERT each, where create would read every row back.
 */
export function purchaseWrites(
  db: PrismaClient | Prisma.TransactionClient,
  row: NewPurchase,
): Prisma.PrismaPromise<unknown>[] {
  const { items, metadata, ...purchase } = row;
  return [
    db.purchase.createMany({ data: [{ ...purchase, metadata: metadata ?? Prisma.JsonNull }] }),
    db.purchaseItem.createMany({
      data: items.map((item, line) => ({ purchaseId: row.id, line, ...item })),
    }),
    db.purchaseEvent.createMany({
      data: [{ purchaseId: row.id, toStatus: 'RECEIVED', createdAt: row.createdAt }],
    }),
  ];
}

/**
 * The same rows as purchaseWrites, as SQL for the api's one-round-trip transaction
 * (`transact` in common/db.ts), where Prisma's CPU per write is the cost.
 */
export function purchaseInserts(row: NewPurchase): { sql: string; values: unknown[] }[] {
  const { items } = row;
  return [
    {
      sql: `INSERT INTO purchases (id, merchant_id, customer_id, idempotency_key, workflow_id,
        amount_minor, currency, status, reason, duplicate_of, attempts, last_error,
        provider_charge_id, metadata, version, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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

class OutOfStock extends Error {}

export function createPurchaseActivities(deps: {
  prisma: PrismaClient;
  producer: Producer;
  logger: Logger;
}) {
  const { prisma, producer, logger } = deps;
  return {
    /** Step 1. The api normally wrote the row already; this makes the workflow self-sufficient. */
    async persistPurchase(input: PurchaseInput): Promise<void> {
      const existing = await prisma.purchase.findUnique({
        where: { id: input.purchaseId },
        select: { id: true },
      });
      if (existing) return;
      const workflowId =
        Context.current().info.workflowExecution?.workflowId ?? workflowIdFor(input.purchaseId);
      try {
        await prisma.$transaction(purchaseWrites(prisma, newPurchase(input, workflowId)));
      } catch (err) {
        // Written in the meantime by another attempt of this step: the same rows.
        const raced = err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';
        if (!raced) throw err;
      }
    },

    /**
     * Moves the purchase to a status and appends the change to the audit trail, in one
     * batch transaction (Prisma's interactive ones cost several times as much CPU). Both
     * writes name the statuses the change may come from, so a transition the table does
     * not allow writes nothing; the same change repeated (a retried activity) is a no-op,
     * and any other is refused with a non-retryable TransitionRefused.
     */
    async recordStatus(change: StatusChange): Promise<void> {
      const { purchaseId, to } = change;
      const from = allowedFrom(to, change.by ?? 'workflow');
      const reason = change.note ?? change.reason ?? change.lastError?.slice(0, 500) ?? null;
      const [, updated] = await prisma.$transaction([
        prisma.$executeRaw`
          INSERT INTO purchase_events (purchase_id, from_status, to_status, reason, actor, created_at)
          SELECT id, status, ${to}, ${reason}, ${change.actor ?? null}, CURRENT_TIMESTAMP(3)
          FROM purchases WHERE id = ${purchaseId} AND status IN (${Prisma.join(from)})
          FOR UPDATE`,
        prisma.purchase.updateMany({
          where: { id: purchaseId, status: { in: from } },
          data: {
            status: to,
            reason: change.reason ?? null,
            version: { increment: 1 },
            ...(change.attempts !== undefined && { attempts: change.attempts }),
            ...(change.lastError !== undefined && { lastError: change.lastError.slice(0, 500) }),
            ...(change.chargeId !== undefined && { providerChargeId: change.chargeId }),
            ...(change.duplicateOf !== undefined && { duplicateOf: change.duplicateOf }),
          },
        }),
      ]);
      if (updated.count === 1) return;
      const current = await prisma.purchase.findUnique({
        where: { id: purchaseId },
        select: { status: true },
      });
      if (!current) throw new Error(`purchase ${purchaseId} does not exist`);
      if (current.status === to) return;
      logger.error(
        { purchaseId, from: current.status, to, by: change.by ?? 'workflow' },
        'status transition refused',
      );
      throw ApplicationFailure.create({
        type: 'TransitionRefused',
        message: `purchase ${purchaseId} cannot move from ${current.status} to ${to}`,
        details: [{ purchaseId, from: current.status, to }],
        nonRetryable: true,
      });
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

    /**
     * Step 2. Holds the purchase's fingerprint for the window. Returns the id of an
     * earlier purchase that holds it, or undefined when this purchase is first.
     */
    async claimFingerprint(
      input: FingerprintInput & { purchaseId: string; windowMs: number },
    ): Promise<string | undefined> {
      const fingerprint = purchaseFingerprint(input);
      const expiresAt = new Date(Date.now() + input.windowMs);
      const [, holder] = await prisma.$transaction([
        // Takes the row lock first, so two concurrent claims cannot both win.
        prisma.$executeRaw`
          INSERT INTO purchase_fingerprints (fingerprint, purchase_id, expires_at)
          VALUES (${fingerprint}, ${input.purchaseId}, ${expiresAt})
          ON DUPLICATE KEY UPDATE
            purchase_id = IF(expires_at < CURRENT_TIMESTAMP(3), VALUES(purchase_id), purchase_id),
            expires_at = IF(expires_at < CURRENT_TIMESTAMP(3), VALUES(expires_at), expires_at)`,
        prisma.purchaseFingerprint.findUnique({ where: { fingerprint } }),
      ]);
      return holder && holder.purchaseId !== input.purchaseId ? holder.purchaseId : undefined;
    },

    /** Step 3. All lines or none, with a conditional decrement per product. */
    async reserveStock(input: { purchaseId: string; items: PurchaseLine[] }): Promise<boolean> {
      try {
        await prisma.$transaction(async (tx) => {
          const already = await tx.stockReservation.findUnique({
            where: { purchaseId: input.purchaseId },
          });
          if (already) return;
          for (const [productId, quantity] of quantitiesByProduct(input.items)) {
            const updated = await tx.$executeRaw`
              UPDATE products SET stock = stock - ${quantity}, version = version + 1
              WHERE id = ${productId} AND stock >= ${quantity}`;
            if (updated !== 1) throw new OutOfStock();
          }
          await tx.stockReservation.createMany({ data: [{ purchaseId: input.purchaseId }] });
        });
        return true;
      } catch (err) {
        if (err instanceof OutOfStock) return false;
        throw err;
      }
    },

    /** Compensation for reserveStock; releasing twice gives stock back once. */
    async releaseStock(purchaseId: string): Promise<void> {
      await prisma.$transaction(async (tx) => {
        const released = await tx.stockReservation.updateMany({
          where: { purchaseId, releasedAt: null },
          data: { releasedAt: new Date() },
        });
        if (released.count !== 1) return;
        const items = await tx.purchaseItem.findMany({ where: { purchaseId } });
        for (const [productId, quantity] of quantitiesByProduct(items)) {
          await tx.$executeRaw`
            UPDATE products SET stock = stock + ${quantity}, version = version + 1
            WHERE id = ${productId}`;
        }
      });
    },

    async publishEvent(input: EventInput): Promise<void> {
      await publish(producer, EVENTS_TOPIC, input);
    },

    async publishDeadLetter(input: EventInput): Promise<void> {
      await publish(producer, DLQ_TOPIC, input);
    },
  };
}
