import type { IndexOp } from './cdc';
import type { IndexName, ProductDoc, PurchaseDoc } from './documents';

/*
 * What the rest of the project may ask of a search engine. Callers (produto, api, the
 * indexer, ops) depend on this interface only; search/opensearch.ts is the one adapter.
 * An Elasticsearch adapter would implement the same interface.
 */

export interface ProductQuery {
  q?: string;
  minPrice?: number;
  maxPrice?: number;
  currency?: string;
  inStock?: boolean;
  limit: number;
  /** Opaque, from a previous page's nextCursor. */
  cursor?: string;
}

export interface PurchaseQuery {
  merchantId: string;
  customerId?: string;
  status?: string;
  from?: Date;
  to?: Date;
  limit: number;
  cursor?: string;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export interface ApplyResult {
  /** Documents written or deleted. */
  applied: number;
  /** Operations the index already had a newer version for (or a delete of a missing doc). */
  skipped: number;
  /** Operations the engine refused for good (a mapping error, say): retrying cannot help. */
  rejected: { op: IndexOp; reason: string }[];
}

export interface SearchEngine {
  /** Creates each missing index (`<name>_v1`) and its alias. Idempotent, safe to race. */
  ensureIndices(): Promise<void>;
  /**
   * Applies operations with external versioning, so an older version never replaces a
   * newer one. Writes through the alias unless `target` names a concrete index.
   * Throws SearchUnavailableError when the engine cannot take them now (retry later).
   */
  apply(ops: IndexOp[], target?: string): Promise<ApplyResult>;
  searchProducts(query: ProductQuery): Promise<Page<ProductDoc>>;
  searchPurchases(query: PurchaseQuery): Promise<Page<PurchaseDoc>>;
  /** id -> version of every document in `target` (default: the alias). */
  versions(index: IndexName, target?: string): Promise<Map<string, number>>;
  /** The concrete index the alias points at. */
  currentIndex(index: IndexName): Promise<string>;
  /** Creates `<name>_v<N+1>` (N = the highest existing) with the current mapping. */
  createNextIndex(index: IndexName): Promise<string>;
  /** Points the alias at `target` in one atomic request; returns the indices it left. */
  swapAlias(index: IndexName, target: string): Promise<string[]>;
  /** Makes everything written so far to `target` (default: the alias) searchable. */
  refresh(index: IndexName, target?: string): Promise<void>;
  close(): Promise<void>;
}

/** The engine is unreachable or overloaded: the caller should retry later. */
export class SearchUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SearchUnavailableError';
  }
}

/** A cursor that this service did not issue for this query. */
export class InvalidCursorError extends Error {
  constructor() {
    super('is not a cursor from this search');
    this.name = 'InvalidCursorError';
  }
}
