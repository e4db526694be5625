/* What the index holds. Both the CDC path (Debezium rows, snake_case) and the MySQL path
   (Prisma rows, for reindex) build the same documents through these functions. */

/** Row timestamps become ISO strings in a document; every other field is copied. */
type WithIsoDates<T> = Omit<T, 'createdAt' | 'updatedAt'> & {
  createdAt: string;
  updatedAt: string;
};

export type ProductDoc = WithIsoDates<ProductRow>;

/**
 * A purchase as support staff look it up. Deliberately absent: metadata (free-form,
 * merchant-defined, may carry personal data), last_error and workflow_id.
 */
export interface PurchaseDoc {
  id: string;
  merchantId: string;
  customerId: string;
  idempotencyKey: string;
  amountMinor: number;
  currency: string;
  status: string;
  reason: string | null;
  duplicateOf: string | null;
  attempts: number;
  providerChargeId: string | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export type IndexName = 'products' | 'purchases';
export type DocOf<I extends IndexName> = I extends 'products' ? ProductDoc : PurchaseDoc;

export interface ProductRow {
  id: string;
  sku: string;
  name: string;
  description: string;
  priceMinor: number;
  currency: string;
  stock: number;
  active: boolean;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface PurchaseRow {
  id: string;
  merchantId: string;
  customerId: string;
  idempotencyKey: string;
  amountMinor: bigint | number;
  currency: string;
  status: string;
  reason: string | null;
  duplicateOf: string | null;
  attempts: number;
  providerChargeId: string | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export function productDoc(row: ProductRow): ProductDoc {
  return {
    id: row.id,
    sku: row.sku,
    name: row.name,
    description: row.description,
    priceMinor: row.priceMinor,
    currency: row.currency,
    stock: row.stock,
    active: row.active,
    version: row.version,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function purchaseDoc(row: PurchaseRow): PurchaseDoc {
  return {
    id: row.id,
    merchantId: row.merchantId,
    customerId: row.customerId,
    idempotencyKey: row.idempotencyKey,
    amountMinor: Number(row.amountMinor),
    currency: row.currency,
    status: row.status,
    reason: row.reason,
    duplicateOf: row.duplicateOf,
    attempts: row.attempts,
    providerChargeId: row.providerChargeId,
    version: row.version,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
