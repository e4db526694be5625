import type { Config } from '../common/config';
import { createPrisma } from '../common/db';
import type { PrismaClient } from '../common/db';
import type { IndexOp } from '../search/cdc';
import { productDoc, purchaseDoc } from '../search/documents';
import type { IndexName } from '../search/documents';
import type { SearchEngine } from '../search/engine';
import { INDEX_NAMES } from '../search/mappings';
import { createOpenSearchClient, createOpenSearchEngine } from '../search/opensearch';

/* Operator commands: compare MySQL with the index, and rebuild an index behind its alias. */

export interface SearchDeps {
  prisma: PrismaClient;
  engine: SearchEngine;
}

export interface IndexDifferences {
  index: IndexName;
  /** Concrete index that was compared. */
  compared: string;
  rows: number;
  documents: number;
  /** In MySQL, not in the index. */
  missing: string[];
  /** In the index with another version than MySQL's. */
  stale: { id: string; mysql: number; index: number }[];
  /** In the index, not in MySQL. */
  extra: string[];
}

export const differenceCount = (d: IndexDifferences): number =>
  d.missing.length + d.stale.length + d.extra.length;

const PAGE = 5000;

/** id -> version of every row of the table behind `index`, read in id order by pages. */
export async function mysqlVersions(
  prisma: PrismaClient,
  index: IndexName,
): Promise<Map<string, number>> {
  const versions = new Map<string, number>();
  let after: string | undefined;
  for (;;) {
    const args = {
      select: { id: true, version: true },
      where: after === undefined ? {} : { id: { gt: after } },
      orderBy: { id: 'asc' as const },
      take: PAGE,
    };
    const rows =
      index === 'products'
        ? await prisma.product.findMany(args)
        : await prisma.purchase.findMany(args);
    for (const r of rows) versions.set(r.id, r.version);
    if (rows.length < PAGE) return versions;
    after = rows[rows.length - 1]?.id;
  }
}

/**
 * Compares ids and versions of MySQL and the index. The index is read first: a row that
 * changes meanwhile then shows as missing or stale (which a repair fixes harmlessly, with
 * versions), never as extra (which a repair would delete).
 */
export async function verifyIndex(
  deps: SearchDeps,
  index: IndexName,
  target?: string,
): Promise<IndexDifferences> {
  const compared = target ?? (await deps.engine.currentIndex(index));
  // Searches see the last refresh only; without this, a write from 0.5 s ago looks missing.
  await deps.engine.refresh(index, compared);
  const indexed = await deps.engine.versions(index, compared);
  const rows = await mysqlVersions(deps.prisma, index);
  const diff: IndexDifferences = {
    index,
    compared,
    rows: rows.size,
    documents: indexed.size,
    missing: [],
    stale: [],
    extra: [],
  };
  for (const [id, version] of rows) {
    const seen = indexed.get(id);
    if (seen === undefined) diff.missing.push(id);
    else if (seen !== version) diff.stale.push({ id, mysql: version, index: seen });
  }
  for (const id of indexed.keys()) if (!rows.has(id)) diff.extra.push(id);
  return diff;
}

/** `search verify`: every index, or the ones named. */
export async function verify(
  deps: SearchDeps,
  indices: IndexName[] = INDEX_NAMES,
): Promise<IndexDifferences[]> {
  const out: IndexDifferences[] = [];
  for (const index of indices) out.push(await verifyIndex(deps, index));
  return out;
}

/** Upsert ops for the given ids, read from MySQL now. */
async function rowsAsOps(
  prisma: PrismaClient,
  index: IndexName,
  ids: string[],
): Promise<IndexOp[]> {
  if (index === 'products') {
    const rows = await prisma.product.findMany({ where: { id: { in: ids } } });
    return rows.map((r) => {
      const doc = productDoc(r);
      return { kind: 'upsert', index, id: doc.id, version: doc.version, doc };
    });
  }
  const rows = await prisma.purchase.findMany({ where: { id: { in: ids } } });
  return rows.map((r) => {
    const doc = purchaseDoc(r);
    return { kind: 'upsert', index, id: doc.id, version: doc.version, doc };
  });
}

/**
 * Makes `target` agree with MySQL for the differences found: rewrites missing and stale
 * documents from the current rows (versioned, so a newer CDC write still wins) and deletes
 * extras whose row is still absent. Returns what it changed.
 */
export async function repair(
  deps: SearchDeps,
  diff: IndexDifferences,
): Promise<{ written: number; deleted: number }> {
  let written = 0;
  let deleted = 0;
  const toWrite = [...diff.missing, ...diff.stale.map((s) => s.id)];
  for (let i = 0; i < toWrite.length; i += 1000) {
    const ops = await rowsAsOps(deps.prisma, diff.index, toWrite.slice(i, i + 1000));
    written += (await deps.engine.apply(ops, diff.compared)).applied;
  }
  if (diff.extra.length > 0) {
    const indexed = await deps.engine.versions(diff.index, diff.compared);
    const stillThere = new Set(
      (await rowsAsOps(deps.prisma, diff.index, diff.extra)).map((o) => o.id),
    );
    const ops: IndexOp[] = diff.extra
      .filter((id) => !stillThere.has(id) && indexed.has(id))
      .map((id) => ({
        kind: 'delete',
        index: diff.index,
        id,
        version: (indexed.get(id) ?? 0) + 1,
      }));
    deleted = (await deps.engine.apply(ops, diff.compared)).applied;
  }
  return { written, deleted };
}

export interface ReindexResult {
  index: IndexName;
  /** The concrete index the alias now points at. */
  current: string;
  /** The indices the alias left; kept for a rollback, delete them when satisfied. */
  previous: string[];
  copied: number;
  /** What the catch-up after the swap changed (writes made to the old index meanwhile). */
  caughtUp: { written: number; deleted: number };
}

/**
 * `search reindex`: copies every row from MySQL into a new `<index>_v<N+1>` (versioned),
 * swaps the alias in one atomic request, then repairs the new index against MySQL: the
 * indexer wrote to the old index until the swap, and the repair brings those changes over.
 */
export async function reindex(deps: SearchDeps, index: IndexName): Promise<ReindexResult> {
  const target = await deps.engine.createNextIndex(index);
  let copied = 0;
  let after: string | undefined;
  for (;;) {
    const where = after === undefined ? {} : { id: { gt: after } };
    const ids = (
      index === 'products'
        ? await deps.prisma.product.findMany({
            select: { id: true },
            where,
            orderBy: { id: 'asc' },
            take: 1000,
          })
        : await deps.prisma.purchase.findMany({
            select: { id: true },
            where,
            orderBy: { id: 'asc' },
            take: 1000,
          })
    ).map((r) => r.id);
    if (ids.length === 0) break;
    const result = await deps.engine.apply(await rowsAsOps(deps.prisma, index, ids), target);
    if (result.rejected.length > 0) {
      throw new Error(
        `${target} rejected ${result.rejected.length} document(s): ${result.rejected[0]?.reason}`,
      );
    }
    copied += result.applied;
    after = ids[ids.length - 1];
  }
  const previous = await deps.engine.swapAlias(index, target);
  const caughtUp = await repair(deps, await verifyIndex(deps, index, target));
  return { index, current: target, previous, copied, caughtUp };
}

export function formatDifferences(diffs: IndexDifferences[], show = 20): string {
  const lines: string[] = [];
  for (const d of diffs) {
    lines.push(
      `${d.index} (${d.compared}): ${d.rows} rows, ${d.documents} documents, ` +
        `${d.missing.length} missing, ${d.stale.length} stale, ${d.extra.length} extra`,
    );
    for (const id of d.missing.slice(0, show)) lines.push(`  missing ${id}`);
    for (const s of d.stale.slice(0, show)) {
      lines.push(`  stale   ${s.id} mysql v${s.mysql} index v${s.index}`);
    }
    for (const id of d.extra.slice(0, show)) lines.push(`  extra   ${id}`);
  }
  return lines.join('\n');
}

const isIndexName = (s: string): s is IndexName => (INDEX_NAMES as string[]).includes(s);

/**
 * `search verify [index...]` exits 0 when MySQL and the index agree, 1 otherwise.
 * `search reindex <products|purchases>` rebuilds one index and swaps its alias.
 */
export async function searchCommand(config: Config, args: string[]): Promise<number> {
  const [sub, ...names] = args;
  const indices = names.filter(isIndexName);
  if (indices.length !== names.length || (sub === 'reindex' && indices.length !== 1)) {
    console.error(
      'usage: search verify [products|purchases...] | search reindex <products|purchases>',
    );
    return 2;
  }
  const prisma = createPrisma(config.DATABASE_URL, 2);
  const engine = createOpenSearchEngine(createOpenSearchClient(config.OPENSEARCH_URL));
  try {
    if (sub === 'verify') {
      const diffs = await verify({ prisma, engine }, indices.length ? indices : INDEX_NAMES);
      console.log(formatDifferences(diffs));
      return diffs.every((d) => differenceCount(d) === 0) ? 0 : 1;
    }
    if (sub === 'reindex' && indices[0]) {
      const r = await reindex({ prisma, engine }, indices[0]);
      console.log(
        `${r.index} -> ${r.current}: ${r.copied} copied, ${r.caughtUp.written} caught up, ` +
          `${r.caughtUp.deleted} deleted; previous: ${r.previous.join(', ') || 'none'}`,
      );
      return 0;
    }
    console.error(
      'usage: search verify [products|purchases...] | search reindex <products|purchases>',
    );
    return 2;
  } finally {
    await engine.close();
    await prisma.$disconnect();
  }
}
