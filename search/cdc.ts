import { z } from 'zod';
import { productDoc, purchaseDoc } from './documents';
import type { IndexName, ProductDoc, PurchaseDoc } from './documents';

/* Debezium change events (JSON converter, schemas off, raw envelope) -> index operations. */

/** connectors/gateway-mariadb.properties: topic.prefix "cdc", database "gateway". */
export const CDC_TOPICS: Record<IndexName, string> = {
  products: 'cdc.gateway.products',
  purchases: 'cdc.gateway.purchases',
};

/** Same layout the connector asks for (topic.creation.default.*), for whoever creates them first. */
export const CDC_TOPIC_CONFIG = {
  numPartitions: 3,
  replicationFactor: 1,
  configEntries: [
    { name: 'cleanup.policy', value: 'compact' },
    { name: 'min.compaction.lag.ms', value: '3600000' },
  ],
};

export type IndexOp =
  | { kind: 'upsert'; index: 'products'; id: string; version: number; doc: ProductDoc }
  | { kind: 'upsert'; index: 'purchases'; id: string; version: number; doc: PurchaseDoc }
  /** `version` is absent for a tombstone: the row is gone, whatever version it had. */
  | { kind: 'delete'; index: IndexName; id: string; version?: number };

// DATETIME(3) arrives as epoch milliseconds (io.debezium.time.Timestamp).
const millis = z.number().transform((ms) => new Date(ms));
// TINYINT(1) arrives as 0/1 from the binlog; accept a boolean too.
const flag = z.union([z.boolean(), z.number().transform((n) => n !== 0)]);

const productRow = z.object({
  id: z.string(),
  sku: z.string(),
  name: z.string(),
  description: z.string(),
  price_minor: z.number().int(),
  currency: z.string(),
  stock: z.number().int(),
  active: flag,
  version: z.number().int(),
  created_at: millis,
  updated_at: millis,
});

const purchaseRow = z.object({
  id: z.string(),
  merchant_id: z.string(),
  customer_id: z.string(),
  idempotency_key: z.string(),
  amount_minor: z.number().int(),
  currency: z.string(),
  status: z.string(),
  reason: z.string().nullable(),
  duplicate_of: z.string().nullable(),
  attempts: z.number().int(),
  provider_charge_id: z.string().nullable(),
  version: z.number().int(),
  created_at: millis,
  updated_at: millis,
});

const versioned = z.object({ id: z.string(), version: z.number().int() });

const envelope = z.object({
  op: z.enum(['r', 'c', 'u', 'd', 't', 'm']),
  before: z.unknown().nullable(),
  after: z.unknown().nullable(),
});

const key = z.object({ id: z.string().min(1) });

export class CdcParseError extends Error {}

export function indexOfTopic(topic: string): IndexName | undefined {
  if (topic === CDC_TOPICS.products) return 'products';
  if (topic === CDC_TOPICS.purchases) return 'purchases';
  return undefined;
}

/**
 * The index operation a change event asks for, or undefined for events that change no
 * document (truncate, logical messages). Throws CdcParseError for a message it cannot read.
 */
export function toIndexOp(
  index: IndexName,
  rawKey: Buffer | null,
  rawValue: Buffer | null,
): IndexOp | undefined {
  const id = parse(key, rawKey, 'key').id;
  if (rawValue === null || rawValue.length === 0) return { kind: 'delete', index, id };
  const event = parse(envelope, rawValue, 'value');
  if (event.op === 't' || event.op === 'm') return undefined;
  if (event.op === 'd') {
    const before = versioned.safeParse(event.before);
    // The delete outranks the last version the row had, so an older event cannot revive it.
    return before.success
      ? { kind: 'delete', index, id, version: before.data.version + 1 }
      : { kind: 'delete', index, id };
  }
  if (index === 'products') {
    const row = check(productRow, event.after, 'after');
    const doc = productDoc({
      ...row,
      priceMinor: row.price_minor,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    });
    return { kind: 'upsert', index, id: doc.id, version: doc.version, doc };
  }
  const row = check(purchaseRow, event.after, 'after');
  const doc = purchaseDoc({
    id: row.id,
    merchantId: row.merchant_id,
    customerId: row.customer_id,
    idempotencyKey: row.idempotency_key,
    amountMinor: row.amount_minor,
    currency: row.currency,
    status: row.status,
    reason: row.reason,
    duplicateOf: row.duplicate_of,
    attempts: row.attempts,
    providerChargeId: row.provider_charge_id,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
  return { kind: 'upsert', index, id: doc.id, version: doc.version, doc };
}

/**
 * Keeps each document's last operation of a batch, in the order of their last event. Safe because a
 * partition holds all of a row's events in commit order, and it turns 200 quick updates
 * of one row into one write.
 */
export function lastPerDocument(ops: IndexOp[]): IndexOp[] {
  const last = new Map<string, IndexOp>();
  for (const op of ops) {
    const k = `${op.index}/${op.id}`;
    last.delete(k);
    last.set(k, op);
  }
  return [...last.values()];
}

function parse<T>(schema: z.ZodType<T>, raw: Buffer | null, what: string): T {
  if (raw === null) throw new CdcParseError(`the ${what} is missing`);
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new CdcParseError(`the ${what} is not JSON`);
  }
  return check(schema, json, what);
}

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const paths = result.error.issues.map((i) => `${what}.${i.path.join('.')}: ${i.message}`);
    throw new CdcParseError(`unexpected change event: ${paths.join('; ')}`);
  }
  return result.data;
}
