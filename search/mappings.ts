import type { IndexName } from './documents';

/*
 * Explicit mappings (dynamic: strict: a field the code does not know is an error, not a
 * guess). Text fields are indexed twice: `name` folds case and accents only (exact-ish
 * words), `name.pt` also drops Portuguese stop words and stems plurals, so "cafés",
 * "café" and "cafe" meet. Stemming runs before accent folding: the stemmer knows the
 * accented endings (pães -> pão -> pao).
 */

const analysis = {
  filter: {
    pt_stop: { type: 'stop', stopwords: '_brazilian_' },
    pt_stem: { type: 'stemmer', language: 'light_portuguese' },
  },
  analyzer: {
    folded: { type: 'custom', tokenizer: 'standard', filter: ['lowercase', 'asciifolding'] },
    pt_folded: {
      type: 'custom',
      tokenizer: 'standard',
      filter: ['lowercase', 'pt_stop', 'pt_stem', 'asciifolding'],
    },
  },
  normalizer: {
    folded: { type: 'custom', filter: ['lowercase', 'asciifolding'] },
  },
};

const settings = {
  number_of_shards: 1,
  // One node locally; production sets replicas with the cluster's size.
  number_of_replicas: 0,
  // Freshness target is p95 <= 1 s from commit to searchable; the default 1 s alone eats it.
  refresh_interval: '500ms',
  analysis,
};

const text = {
  type: 'text',
  analyzer: 'folded',
  fields: { pt: { type: 'text', analyzer: 'pt_folded' } },
};
const keyword = { type: 'keyword' };
const date = { type: 'date', format: 'strict_date_optional_time' };

export const INDEX_DEFINITIONS: Record<IndexName, { settings: object; mappings: object }> = {
  products: {
    settings,
    mappings: {
      dynamic: 'strict',
      properties: {
        id: keyword,
        sku: { type: 'keyword', normalizer: 'folded' },
        name: text,
        description: text,
        priceMinor: { type: 'long' },
        currency: keyword,
        stock: { type: 'integer' },
        active: { type: 'boolean' },
        version: { type: 'long' },
        createdAt: date,
        updatedAt: date,
      },
    },
  },
  purchases: {
    settings,
    mappings: {
      dynamic: 'strict',
      properties: {
        id: keyword,
        merchantId: keyword,
        customerId: keyword,
        idempotencyKey: keyword,
        amountMinor: { type: 'long' },
        currency: keyword,
        status: keyword,
        reason: keyword,
        duplicateOf: keyword,
        attempts: { type: 'integer' },
        providerChargeId: keyword,
        version: { type: 'long' },
        createdAt: date,
        updatedAt: date,
      },
    },
  },
};

export const INDEX_NAMES: IndexName[] = ['products', 'purchases'];

/** (`products`, `products_v3`) -> 3; undefined for names outside the scheme. */
export function generationOf(alias: string, concrete: string): number | undefined {
  const match = /_v(\d+)$/.exec(concrete);
  if (!concrete.startsWith(`${alias}_v`)) return undefined;
  return match?.[1] ? Number(match[1]) : undefined;
}
