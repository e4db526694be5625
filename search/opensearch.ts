import { Client, errors } from '@opensearch-project/opensearch';
import type { IndexOp } from './cdc';
import type { IndexName, ProductDoc, PurchaseDoc } from './documents';
import { InvalidCursorError, SearchUnavailableError } from './engine';
import type { ApplyResult, Page, ProductQuery, PurchaseQuery, SearchEngine } from './engine';
import { generationOf, INDEX_DEFINITIONS, INDEX_NAMES } from './mappings';

/** The OpenSearch 2.x adapter of SearchEngine (the Elasticsearch 7.10 API). */
export function createOpenSearchEngine(
  client: Client,
  options: { prefix?: string } = {},
): SearchEngine {
  return new OpenSearchEngine(client, options.prefix ?? '');
}

export function createOpenSearchClient(url: string): Client {
  // Bounded: a hung engine must fail a request, not hold it (the indexer retries).
  return new Client({ node: url, requestTimeout: 10_000, maxRetries: 1 });
}

type SortValue = string | number;

/** What a hit's `sort` holds for a key, and so what its search_after slot must take back. */
export type SlotType = 'score' | 'epochMillis' | 'keyword';

interface SortKey {
  clause: string | Record<string, 'asc' | 'desc'>;
  slot: SlotType;
}

const BY_SCORE: SortKey = { clause: '_score', slot: 'score' };
const BY_ID: SortKey = { clause: { id: 'asc' }, slot: 'keyword' };
// A date sorts as epoch milliseconds; we never issue anything else for it.
const NEWEST: SortKey = { clause: { createdAt: 'desc' }, slot: 'epochMillis' };

interface Hit<T> {
  _id: string;
  _version?: number;
  _source?: T;
  sort?: SortValue[];
}

interface BulkItem {
  status: number;
  error?: { type?: string; reason?: string | null };
}

class OpenSearchEngine implements SearchEngine {
  /** `prefix` namespaces every alias and index (tests run side by side with it). */
  constructor(
    private readonly client: Client,
    private readonly prefix: string,
  ) {}

  private alias(index: IndexName): string {
    return `${this.prefix}${index}`;
  }

  async ensureIndices(): Promise<void> {
    for (const name of INDEX_NAMES) {
      const index = this.alias(name);
      await guard(async () => {
        if ((await this.client.indices.existsAlias({ name: index })).body) return;
        if ((await this.client.indices.exists({ index })).body) {
          throw new Error(
            `${index} is a concrete index, not an alias (written to before the indexer created it?); delete it and restart`,
          );
        }
        const first = `${index}_v1`;
        try {
          await this.client.indices.create({ index: first, body: INDEX_DEFINITIONS[name] });
        } catch (err) {
          if (!isType(err, 'resource_already_exists_exception')) throw err;
        }
        await this.client.indices.updateAliases({
          body: { actions: [{ add: { index: first, alias: index } }] },
        });
      });
    }
  }

  async apply(ops: IndexOp[], target?: string): Promise<ApplyResult> {
    const result: ApplyResult = { applied: 0, skipped: 0, rejected: [] };
    if (ops.length === 0) return result;
    const body: object[] = [];
    for (const op of ops) {
      const meta = {
        _index: target ?? this.alias(op.index),
        _id: op.id,
        ...(op.version !== undefined && { version: op.version, version_type: 'external' }),
      };
      if (op.kind === 'upsert') body.push({ index: meta }, op.doc);
      else body.push({ delete: meta });
    }
    const res = await guard(() =>
      this.client.bulk({ body, ...(target === undefined && { require_alias: true }) }),
    );
    const items = res.body.items as Record<string, BulkItem>[];
    let retryable: string | undefined;
    items.forEach((item, i) => {
      const outcome = Object.values(item)[0];
      const op = ops[i];
      if (!outcome || !op) return;
      if (outcome.status < 300) result.applied++;
      else if (outcome.status === 409 || (op.kind === 'delete' && outcome.status === 404)) {
        result.skipped++;
      } else if (outcome.status === 429 || outcome.status >= 500) {
        retryable ??= `${outcome.status} ${outcome.error?.type ?? ''}`;
      } else {
        const reason = `${outcome.status} ${outcome.error?.type ?? ''}: ${outcome.error?.reason ?? ''}`;
        result.rejected.push({ op, reason });
      }
    });
    // Items that did succeed are versioned, so sending the whole batch again is harmless.
    if (retryable) throw new SearchUnavailableError(`the engine refused a bulk item: ${retryable}`);
    return result;
  }

  async searchProducts(query: ProductQuery): Promise<Page<ProductDoc>> {
    const relevance = query.q !== undefined;
    const filter: object[] = [{ term: { active: true } }];
    if (query.minPrice !== undefined || query.maxPrice !== undefined) {
      filter.push({ range: { priceMinor: { gte: query.minPrice, lte: query.maxPrice } } });
    }
    if (query.currency) filter.push({ term: { currency: query.currency } });
    if (query.inStock === true) filter.push({ range: { stock: { gt: 0 } } });
    if (query.inStock === false) filter.push({ term: { stock: 0 } });
    const must = relevance
      ? [
          {
            multi_match: {
              query: query.q,
              type: 'cross_fields',
              operator: 'and',
              fields: ['name^3', 'name.pt^2', 'description', 'description.pt'],
            },
          },
        ]
      : [];
    const sort = relevance ? [BY_SCORE, BY_ID] : [BY_ID];
    return this.page<ProductDoc>('products', { bool: { must, filter } }, sort, query);
  }

  async searchPurchases(query: PurchaseQuery): Promise<Page<PurchaseDoc>> {
    const filter: object[] = [{ term: { merchantId: query.merchantId } }];
    if (query.customerId) filter.push({ term: { customerId: query.customerId } });
    if (query.status) filter.push({ term: { status: query.status } });
    if (query.from || query.to) {
      filter.push({
        range: { createdAt: { gte: query.from?.toISOString(), lt: query.to?.toISOString() } },
      });
    }
    return this.page<PurchaseDoc>('purchases', { bool: { filter } }, [NEWEST, BY_ID], query);
  }

  private async page<T>(
    index: IndexName,
    query: object,
    sort: SortKey[],
    page: { limit: number; cursor?: string },
  ): Promise<Page<T>> {
    const slots = sort.map((key) => key.slot);
    const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor, slots);
    const res = await guard(() =>
      this.client.search({
        index: this.alias(index),
        body: {
          query,
          sort: sort.map((key) => key.clause),
          size: page.limit + 1,
          track_total_hits: false,
          ...(after && { search_after: after }),
        },
      } as Parameters<Client['search']>[0]),
    ).catch((err: unknown) => {
      // With a cursor sent, only its values can make this query a 400: one decodeCursor missed.
      if (after && err instanceof errors.ResponseError && err.meta.statusCode === 400) {
        throw new InvalidCursorError();
      }
      throw err;
    });
    const hits = res.body.hits.hits as Hit<T>[];
    const data = hits.slice(0, page.limit);
    const last = data[data.length - 1];
    return {
      data: data.flatMap((h) => (h._source ? [h._source] : [])),
      nextCursor: hits.length > page.limit && last?.sort ? encodeCursor(last.sort) : null,
    };
  }

  async versions(index: IndexName, target?: string): Promise<Map<string, number>> {
    const versions = new Map<string, number>();
    let res = await guard(() =>
      this.client.search({
        index: target ?? this.alias(index),
        scroll: '1m',
        body: {
          query: { match_all: {} },
          sort: ['_doc'],
          size: 5000,
          version: true,
          _source: false,
        },
      } as Parameters<Client['search']>[0]),
    );
    try {
      for (;;) {
        const hits = res.body.hits.hits as Hit<never>[];
        if (hits.length === 0) break;
        for (const h of hits) versions.set(h._id, h._version ?? 0);
        const scrollId = res.body._scroll_id;
        if (!scrollId) break;
        res = await guard(() =>
          this.client.scroll({ body: { scroll_id: scrollId, scroll: '1m' } }),
        );
      }
    } finally {
      const scrollId = res.body._scroll_id;
      if (scrollId) {
        await this.client.clearScroll({ body: { scroll_id: scrollId } }).catch(() => undefined);
      }
    }
    return versions;
  }

  async currentIndex(index: IndexName): Promise<string> {
    const res = await guard(() => this.client.indices.getAlias({ name: this.alias(index) }));
    const names = Object.keys(res.body);
    if (names.length !== 1 || !names[0]) {
      throw new Error(`alias ${index} points at ${names.length} indices: ${names.join(', ')}`);
    }
    return names[0];
  }

  async createNextIndex(index: IndexName): Promise<string> {
    const res = await guard(() =>
      this.client.indices.get({ index: `${this.alias(index)}_v*`, expand_wildcards: 'all' }),
    );
    const generations = Object.keys(res.body as Record<string, unknown>).map(
      (name) => generationOf(this.alias(index), name) ?? 0,
    );
    const next = `${this.alias(index)}_v${Math.max(0, ...generations) + 1}`;
    await guard(() => this.client.indices.create({ index: next, body: INDEX_DEFINITIONS[index] }));
    return next;
  }

  async swapAlias(index: IndexName, target: string): Promise<string[]> {
    const res = await guard(() => this.client.indices.getAlias({ name: this.alias(index) }));
    const previous = Object.keys(res.body as Record<string, unknown>).filter((n) => n !== target);
    const actions: object[] = [
      ...previous.map((name) => ({ remove: { index: name, alias: this.alias(index) } })),
      { add: { index: target, alias: this.alias(index) } },
    ];
    await guard(() => this.client.indices.updateAliases({ body: { actions } }));
    return previous;
  }

  async refresh(index: IndexName, target?: string): Promise<void> {
    await guard(() => this.client.indices.refresh({ index: target ?? this.alias(index) }));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** search_after values travel as base64url JSON. */
export function encodeCursor(values: SortValue[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

const SLOT_CHECKS: Record<SlotType, (value: unknown) => boolean> = {
  score: (v) => typeof v === 'number' && Number.isFinite(v),
  epochMillis: (v) => Number.isSafeInteger(v),
  keyword: (v) => typeof v === 'string',
};

/**
 * Only an array with one value of the right type per sort key passes: the engine answers
 * a mistyped one with a 400 (a string for a date) or quietly coerces it (a number for a
 * keyword), and a cursor we issued never has either.
 */
export function decodeCursor(cursor: string, slots: SlotType[]): SortValue[] {
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  if (
    !Array.isArray(values) ||
    values.length !== slots.length ||
    !slots.every((slot, i) => SLOT_CHECKS[slot](values[i])) ||
    encodeCursor(values as SortValue[]) !== cursor
  ) {
    throw new InvalidCursorError();
  }
  return values as SortValue[];
}

function isType(err: unknown, type: string): boolean {
  if (!(err instanceof errors.ResponseError)) return false;
  const body = err.meta.body as { error?: { type?: string } } | undefined;
  return body?.error?.type === type;
}

/** Connection trouble, timeouts, 429 and 5xx become SearchUnavailableError; the rest pass. */
async function guard<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (
      err instanceof errors.ConnectionError ||
      err instanceof errors.TimeoutError ||
      err instanceof errors.NoLivingConnectionsError ||
      (err instanceof errors.ResponseError &&
        (err.meta.statusCode === 429 || (err.meta.statusCode ?? 0) >= 500))
    ) {
      throw new SearchUnavailableError(`search engine unavailable: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
