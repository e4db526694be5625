import { randomUUID } from 'node:crypto';
import { SqlError } from 'mariadb';
import { newPurchase, purchaseInserts } from '../../activities/purchases';
import type { Config } from '../../common/config';
import { decodeCursor, encodeCursor } from '../../common/cursor';
import { SQL_ERRNO, transact, utcDate } from '../../common/db';
import type { PrismaClient, SqlPool, Statement } from '../../common/db';
import { AppError, notFound, unavailable, unprocessable } from '../../common/errors';
import type { Logger } from '../../common/logger';
import type { SearchEngine } from '../../search/engine';
import type { Purchase } from '../../generated/prisma/client';
import { workflowIdFor } from '../../workflows/contract';
import type { PurchaseInput, PurchaseStatus } from '../../workflows/contract';
import type { CreatePurchaseBody } from './request';
import { requestHash } from './request';
import type { WorkflowStarter } from './starter';
import { startInsert } from './starter';

export interface PurchaseDeps {
  prisma: PrismaClient;
  /** The bare driver, for the intake's writes and reads (Prisma costs most of a POST's CPU). */
  sql: SqlPool;
  starter: Pick<WorkflowStarter, 'seal' | 'ensureAvailable' | 'kick'>;
  config: Config;
  logger: Logger;
  search: Pick<SearchEngine, 'searchPurchases'>;
}

export interface PurchaseView {
  id: string;
  status: PurchaseStatus;
  amount: number;
  currency: string;
  captureMethod: string;
  /** Null until captured; at most `amount` (a partial capture takes less). */
  amountCaptured: number | null;
  amountRefunded: number;
  customerId: string;
  items: { productId: string; quantity: number; unitPrice: number }[];
  reason: string | null;
  duplicateOf: string | null;
  attempts: number;
  lastError: string | null;
  metadata: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  links: { self: string };
}

const purchaseWithItems = { items: { orderBy: { line: 'asc' } } } as const;
/** A purchase row with the fields of its lines the view shows. */
type PurchaseRow = Purchase & {
  items: { productId: string; quantity: number; unitPriceMinor: number }[];
};

export function toView(row: PurchaseRow): PurchaseView {
  return {
    id: row.id,
    status: row.status as PurchaseStatus,
    amount: Number(row.amountMinor),
    currency: row.currency,
    captureMethod: row.captureMethod,
    amountCaptured: row.amountCaptured === null ? null : Number(row.amountCaptured),
    amountRefunded: Number(row.amountRefunded),
    customerId: row.customerId,
    items: row.items.map((i) => ({
      productId: i.productId,
      quantity: i.quantity,
      unitPrice: i.unitPriceMinor,
    })),
    reason: row.reason,
    duplicateOf: row.duplicateOf,
    attempts: row.attempts,
    lastError: row.lastError,
    metadata: (row.metadata ?? {}) as Record<string, string>,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    links: { self: `/v1/purchases/${row.id}` },
  };
}

export type CreateOutcome = { purchase: PurchaseView; replayed: boolean };

/**
 * Creates a purchase once per (merchant, Idempotency-Key). The rows, the key and the
 * workflow start's outbox row are written in one transaction, sent in one round trip;
 * the workflow is started after the commit, off the request path (./starter.ts). While
 * Temporal is down nothing is written and the caller gets 503 and may retry with the key.
 */
export async function createPurchase(
  deps: PurchaseDeps,
  merchantId: string,
  idempotencyKey: string,
  body: CreatePurchaseBody,
): Promise<CreateOutcome> {
  const hash = requestHash(body);
  // One read of the key serves both checks below: live means replay, expired means reuse.
  const now = new Date();
  const existing = await findKey(deps, merchantId, idempotencyKey);
  if (existing && existing.expiresAt > now) {
    return replay(existing, hash);
  }

  const input = await priceRequest(deps, merchantId, idempotencyKey, body);
  deps.starter.ensureAvailable();
  const workflowId = workflowIdFor(input.purchaseId);
  const row = newPurchase(input, workflowId);
  const start = {
    workflowType: 'purchase' as const,
    purchaseId: input.purchaseId,
    workflowId,
    taskQueue: deps.config.PURCHASES_TASK_QUEUE,
    namespace: deps.config.TEMPORAL_NAMESPACE,
    input,
  };
  const sealed = await deps.starter.seal(input);
  const writes: Statement[] = [
    keyInsert(deps.config, { merchantId, key: idempotencyKey, hash, purchaseId: row.id }),
    ...purchaseInserts(row),
  ];
  // An expired key may be reused: its old row gives way to the new purchase. It is
  // deleted by its exact key and only when present, because a range delete takes gap
  // locks that deadlock concurrent inserts of neighbouring keys.
  if (existing && existing.expiresAt < now) {
    writes.unshift({
      sql: 'DELETE FROM idempotency_keys WHERE merchant_id = ? AND idempotency_key = ? AND expires_at = ?',
      values: [merchantId, idempotencyKey, existing.expiresAt],
    });
  }
  let leaseUntil: number;
  for (let attempt = 1; ; attempt++) {
    const outbox = startInsert(start, sealed);
    try {
      await transact(deps.sql, [...writes, outbox.insert]);
      leaseUntil = outbox.leaseUntil;
      break;
    } catch (err) {
      if (!isKeyRace(err)) throw err;
      // A concurrent request with the same key won the insert: answer as its replay.
      const winner = await findKey(deps, merchantId, idempotencyKey);
      if (winner && winner.expiresAt > new Date()) return replay(winner, hash);
      // A deadlock with no winner: InnoDB rolled us back, so trying again is safe.
      if (attempt >= 3) throw err;
    }
  }

  deps.starter.kick(start, leaseUntil);
  return { purchase: toView(row), replayed: false };
}

/** When a key written now stops being replayed. */
export const keyExpiry = (config: Config): Date =>
  new Date(Date.now() + config.IDEMPOTENCY_TTL_HOURS * 3600_000);

/** The insert of an Idempotency-Key, bound to its request and to the purchase it concerns. */
export function keyInsert(
  config: Config,
  key: { merchantId: string; key: string; hash: string; purchaseId: string },
): Statement {
  return {
    sql: `INSERT INTO idempotency_keys (merchant_id, idempotency_key, request_hash, purchase_id,
      expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
    values: [key.merchantId, key.key, key.hash, key.purchaseId, keyExpiry(config), new Date()],
  };
}

/** A unique-key collision, or the deadlock InnoDB may report for the same race. */
export function isKeyRace(err: unknown): boolean {
  return (
    err instanceof SqlError &&
    (err.errno === SQL_ERRNO.duplicateKey || err.errno === SQL_ERRNO.deadlock)
  );
}

export interface KeyRecord {
  purchaseId: string;
  requestHash: string;
  expiresAt: Date;
  /** Absent only if the purchase row is gone, which a transaction should never allow. */
  purchase: PurchaseRow | null;
}

/**
 * A row of FIND_KEY as the driver reads it with `dateStrings` and without `autoJsonMap`:
 * DATETIMEs and JSON as text, BIGINT as bigint. The purchase's columns are null when its
 * row is missing.
 */
type KeyRow = { purchaseId: string; requestHash: string; expiresAt: string } & Omit<
  PurchaseRow,
  'metadata' | 'items' | 'createdAt' | 'updatedAt'
> & { metadata: string | null; items: string | null; createdAt: string; updatedAt: string };

/** The key and its purchase with its lines in one round trip, because replays are the hot path. */
const FIND_KEY = `
  SELECT k.purchase_id AS purchaseId, k.request_hash AS requestHash, k.expires_at AS expiresAt,
    p.id, p.merchant_id AS merchantId, p.customer_id AS customerId,
    p.idempotency_key AS idempotencyKey, p.workflow_id AS workflowId,
    p.amount_minor AS amountMinor, p.currency, p.status, p.reason,
    p.duplicate_of AS duplicateOf, p.attempts, p.last_error AS lastError,
    p.provider_charge_id AS providerChargeId, p.capture_method AS captureMethod,
    p.provider_authorization_id AS providerAuthorizationId, p.amount_captured AS amountCaptured,
    p.amount_refunded AS amountRefunded, p.metadata, p.version,
    p.created_at AS createdAt, p.updated_at AS updatedAt,
    (SELECT JSON_ARRAYAGG(JSON_OBJECT('productId', i.product_id, 'quantity', i.quantity,
              'unitPriceMinor', i.unit_price_minor) ORDER BY i.line)
       FROM purchase_items i WHERE i.purchase_id = p.id) AS items
  FROM idempotency_keys k LEFT JOIN purchases p ON p.id = k.purchase_id
  WHERE k.merchant_id = ? AND k.idempotency_key = ?`;

/** The columns come back named as Prisma names the fields, and typed as it types them. */
export async function findKey(
  deps: PurchaseDeps,
  merchantId: string,
  key: string,
): Promise<KeyRecord | undefined> {
  const rows = await deps.sql.query<KeyRow[]>(
    { sql: FIND_KEY, dateStrings: true, autoJsonMap: false },
    [merchantId, key],
  );
  const row = rows[0];
  if (!row) return undefined;
  const { purchaseId, requestHash, expiresAt, metadata, items, createdAt, updatedAt, ...purchase } =
    row;
  return {
    purchaseId,
    requestHash,
    expiresAt: utcDate(expiresAt),
    purchase:
      purchase.id === null
        ? null
        : {
            ...purchase,
            metadata: metadata === null ? null : (JSON.parse(metadata) as PurchaseRow['metadata']),
            items: items === null ? [] : (JSON.parse(items) as PurchaseRow['items']),
            createdAt: utcDate(createdAt),
            updatedAt: utcDate(updatedAt),
          },
  };
}

function replay(record: KeyRecord, hash: string): CreateOutcome {
  if (record.requestHash !== hash) {
    throw unprocessable(
      'idempotency_key_reused',
      `this Idempotency-Key was used for purchase ${record.purchaseId} with another body`,
      { purchaseId: record.purchaseId },
    );
  }
  const row = record.purchase;
  if (!row) throw unavailable('the original request is still being set up; retry shortly', 1);
  return { purchase: toView(row), replayed: true };
}

export function retryPolicy(config: Config): PurchaseInput['retry'] {
  return {
    initialIntervalMs: config.PAYMENT_RETRY_INITIAL_MS,
    backoffCoefficient: config.PAYMENT_RETRY_BACKOFF,
    maximumIntervalMs: config.PAYMENT_RETRY_MAX_INTERVAL_MS,
    maximumAttempts: config.PAYMENT_RETRY_MAX_ATTEMPTS,
    providerTimeoutMs: config.PROVIDER_TIMEOUT_MS,
  };
}

/** Prices the basket from the catalog, in integer minor units. */
async function priceRequest(
  deps: PurchaseDeps,
  merchantId: string,
  idempotencyKey: string,
  body: CreatePurchaseBody,
): Promise<PurchaseInput> {
  const ids = [...new Set(body.items.map((i) => i.productId))];
  const products = await deps.sql.query<{ id: string; priceMinor: number; currency: string }[]>(
    `SELECT id, price_minor AS priceMinor, currency FROM products
      WHERE active = 1 AND id IN (${ids.map(() => '?').join(', ')})`,
    ids,
  );
  const byId = new Map(products.map((p) => [p.id, p]));
  const unknown = ids.filter((id) => !byId.has(id));
  if (unknown.length > 0) {
    throw unprocessable('unknown_product', 'some products do not exist or are inactive', {
      productIds: unknown,
    });
  }
  const items = body.items.map((i) => {
    const product = byId.get(i.productId)!;
    if (product.currency !== body.currency) {
      throw unprocessable(
        'currency_mismatch',
        `product ${product.id} is priced in ${product.currency}, not ${body.currency}`,
        { productId: product.id, productCurrency: product.currency },
      );
    }
    return { productId: i.productId, quantity: i.quantity, unitPriceMinor: product.priceMinor };
  });
  const amountMinor = items.reduce((sum, i) => sum + i.unitPriceMinor * i.quantity, 0);
  if (!Number.isSafeInteger(amountMinor)) {
    throw new AppError(422, 'amount_too_large', 'the purchase amount is too large');
  }
  return {
    purchaseId: `pur_${randomUUID().replace(/-/g, '')}`,
    merchantId,
    customerId: body.customerId,
    idempotencyKey,
    amountMinor,
    currency: body.currency,
    items,
    token: body.paymentMethod.token,
    metadata: body.metadata,
    createdAt: new Date().toISOString(),
    dedupWindowMs: deps.config.DEDUP_WINDOW_SECONDS * 1000,
    paymentsTaskQueue: deps.config.PAYMENTS_TASK_QUEUE,
    retry: retryPolicy(deps.config),
    // Only a manual purchase carries these, so an automatic one's input is as it was.
    ...(body.captureMethod === 'manual' && {
      captureMethod: 'manual',
      authorizationTtlMs: Math.round(deps.config.AUTHORIZATION_TTL_HOURS * 3600_000),
    }),
  };
}

export async function loadView(
  deps: PurchaseDeps,
  merchantId: string,
  id: string,
): Promise<PurchaseView> {
  const row = await deps.prisma.purchase.findFirst({
    where: { id, merchantId },
    include: purchaseWithItems,
  });
  if (!row) throw notFound('purchase');
  return toView(row);
}

export interface PurchaseDetail extends PurchaseView {
  timeline: {
    from: string | null;
    to: string;
    reason: string | null;
    actor: string | null;
    at: string;
  }[];
}

/** A merchant's purchase with its audit timeline; another merchant's id is simply not found. */
export async function getPurchase(
  deps: Pick<PurchaseDeps, 'prisma'>,
  merchantId: string,
  id: string,
): Promise<PurchaseDetail> {
  const view = await loadView(deps as PurchaseDeps, merchantId, id);
  const events = await deps.prisma.purchaseEvent.findMany({
    where: { purchaseId: id },
    orderBy: { id: 'asc' },
  });
  return {
    ...view,
    timeline: events.map((e) => ({
      from: e.fromStatus,
      to: e.toStatus,
      reason: e.reason,
      actor: e.actor,
      at: e.createdAt.toISOString(),
    })),
  };
}

export interface ListFilter {
  customerId?: string;
  status?: PurchaseStatus;
  limit: number;
  cursor?: string;
}

/** Newest first, with an opaque cursor over (createdAt, id). */
export async function listPurchases(
  deps: Pick<PurchaseDeps, 'prisma'>,
  merchantId: string,
  filter: ListFilter,
): Promise<{ data: PurchaseView[]; nextCursor: string | null }> {
  const after = filter.cursor ? decodeCursor(filter.cursor) : undefined;
  const rows = await deps.prisma.purchase.findMany({
    where: {
      merchantId,
      ...(filter.customerId && { customerId: filter.customerId }),
      ...(filter.status && { status: filter.status }),
      ...(after && {
        OR: [
          { createdAt: { lt: after.createdAt } },
          { createdAt: after.createdAt, id: { lt: after.id } },
        ],
      }),
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: filter.limit + 1,
    include: purchaseWithItems,
  });
  const page = rows.slice(0, filter.limit);
  const last = page[page.length - 1];
  return {
    data: page.map(toView),
    nextCursor: rows.length > filter.limit && last ? encodeCursor(last) : null,
  };
}
