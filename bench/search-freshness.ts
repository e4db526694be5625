/*
 * Search freshness against the running stack (a script, not a test):
 *
 *   npm run build && node dist/bench/search-freshness.js [--updates 500] [--concurrency 4]
 *     [--warmup 20] [--poll-ms 20] [--max-gap-ms 500] [--timeout-minutes 10]
 *
 * Each update changes one bench product's name and price with version + 1 in one
 * autocommitted UPDATE (Prisma), then polls OpenSearch until a search on the products
 * alias returns that version: commit -> binlog -> Debezium -> Kafka -> indexer -> refresh.
 * `--concurrency` lanes run side by side, each sequential on a product of its own.
 * See docs/benchmarks.md.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Client } from '@opensearch-project/opensearch';
import { errors } from '@opensearch-project/opensearch';
import { z } from 'zod';
import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import type { PrismaClient } from '../common/db';
import { Prisma } from '../generated/prisma/client';
import { createOpenSearchClient } from '../search/opensearch';
import {
  checkPipeline,
  ensureIndexer,
  machineTable,
  ms,
  percentile,
  PRODUCTS_ALIAS,
} from './search-support';
import type { IndexerHandle } from './search-support';
import {
  cpuBetween,
  cpuSnapshot,
  log,
  machine,
  parseFlags,
  requireLoopback,
  runBench,
  runPool,
  stackPids,
} from './support';
import type { CpuUsage, Deadline } from './support';

const TARGET_P95_MS = 1000;
const SKU_PREFIX = 'bench-search-fresh-';

const flags = z.object({
  updates: z.coerce.number().int().min(1).max(100_000).default(500),
  concurrency: z.coerce.number().int().min(1).max(32).default(4),
  warmup: z.coerce.number().int().min(0).max(1000).default(20),
  'poll-ms': z.coerce.number().int().min(1).max(1000).default(20),
  /** A random pause before each update, so updates do not lock step with the 500 ms refresh. */
  'max-gap-ms': z.coerce.number().int().min(0).max(10_000).default(500),
  'update-timeout-seconds': z.coerce.number().int().min(1).max(300).default(30),
  'timeout-minutes': z.coerce.number().min(1).max(120).default(10),
});
type Flags = z.infer<typeof flags>;

interface Lane {
  id: string;
  sku: string;
  version: number;
}

interface Sample {
  /** The UPDATE's round trip: sent to acknowledged (committed). */
  statementMs: number;
  /** Commit acknowledged -> a realtime GET returns the version (in the index, not yet searchable). */
  indexedMs: number;
  /** Commit acknowledged -> a search returns the version. The measure. */
  searchableMs: number;
}

async function main(opts: Flags, deadline: Deadline): Promise<void> {
  const command = ['node dist/bench/search-freshness.js', ...process.argv.slice(2)].join(' ');
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent' });
  requireLoopback(config);
  const startMachine = machine();
  const runId = `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
  log(`bench run ${runId}: ${command}`);

  const prisma = createPrisma(config.DATABASE_URL, opts.concurrency + 1);
  const client = createOpenSearchClient(config.OPENSEARCH_URL);
  let indexer: IndexerHandle | undefined;
  try {
    await checkPipeline(config, client, deadline);
    indexer = await ensureIndexer(config, deadline);
    log(`indexer: ${indexer.mode}`);

    const lanes: Lane[] = [];
    for (let i = 0; i < opts.concurrency; i++) lanes.push(await benchProduct(prisma, i));
    log(`waiting until the ${lanes.length} bench products are searchable (indexer catch-up)...`);
    for (const lane of lanes) {
      const seen = await waitSearchable(client, lane, performance.now(), {
        pollMs: 100,
        timeoutMs: deadline.left(),
        deadline,
        phase: 'catching up',
      });
      if (!seen) throw new Error(`product ${lane.id} never became searchable`);
    }

    const total = opts.warmup + opts.updates;
    const samples: Sample[] = [];
    const timedOut: string[] = [];
    let next = 0;
    log(`${opts.warmup} warm-up updates, then ${opts.updates} measured, ${lanes.length} lanes...`);
    const before = cpuSnapshot(stackPids());
    let t0 = performance.now();
    await runPool(
      lanes.length,
      lanes.length,
      async (l) => {
        const lane = lanes[l]!;
        while (next < total) {
          const i = next++;
          if (i === opts.warmup) {
            t0 = performance.now();
            log('  warm-up done; measuring');
          }
          await deadline.sleep(Math.random() * opts['max-gap-ms'], 'pausing between updates');
          const sample = await updateAndWait(prisma, client, lane, i, runId, opts, deadline);
          if (i < opts.warmup) continue;
          if (sample) samples.push(sample);
          else timedOut.push(`${lane.id}@${lane.version}`);
          const done = samples.length + timedOut.length;
          if (done % 100 === 0) {
            log(`  ${done}/${opts.updates}, p95 so far ${ms(p95(samples))}`);
          }
        }
      },
      deadline,
      'updating and polling',
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuBetween(before, cpuSnapshot(stackPids()));
    process.stdout.write(
      report({
        command,
        opts,
        indexerMode: indexer.mode,
        samples,
        timedOut,
        seconds,
        cpu,
        machines: machineTable(startMachine, machine()),
      }),
    );
  } finally {
    await indexer?.stop().catch((err: unknown) => log(`stopping the indexer: ${String(err)}`));
    await client.close().catch(() => undefined);
    await prisma.$disconnect();
  }
}

const p95 = (samples: Sample[]) =>
  percentile(
    samples.map((s) => s.searchableMs),
    0.95,
  );

/** The lane's product, created on first use and kept for later runs (skus `bench-search-fresh-N`). */
async function benchProduct(prisma: PrismaClient, lane: number): Promise<Lane> {
  const sku = `${SKU_PREFIX}${lane}`;
  let row = await prisma.product.findUnique({ where: { sku } });
  if (!row) {
    try {
      row = await prisma.product.create({
        data: {
          sku,
          name: `Bench freshness ${lane}`,
          description: 'updated by bench/search-freshness.ts',
          priceMinor: 1000,
          currency: 'BRL',
          stock: 100,
        },
      });
    } catch (err) {
      if (!(err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002')) throw err;
      row = await prisma.product.findUniqueOrThrow({ where: { sku } });
    }
  }
  return { id: row.id, sku, version: row.version };
}

async function updateAndWait(
  prisma: PrismaClient,
  client: Client,
  lane: Lane,
  i: number,
  runId: string,
  opts: Flags,
  deadline: Deadline,
): Promise<Sample | undefined> {
  const data = {
    name: `Bench freshness ${runId} ${i}`,
    priceMinor: 1000 + (i % 5000),
    version: { increment: 1 },
  };
  const sent = performance.now();
  const { count } = await deadline.race(
    prisma.product.updateMany({ where: { id: lane.id, version: lane.version }, data }),
    'updating a product',
  );
  const committed = performance.now();
  if (count !== 1) {
    // The bench products are this script's alone; a stranger's write would skew the run.
    const row = await prisma.product.findUniqueOrThrow({ where: { id: lane.id } });
    throw new Error(
      `${lane.sku} was at version ${row.version}, not ${lane.version}: another writer is changing the bench products`,
    );
  }
  lane.version += 1;
  const seen = await waitSearchable(client, lane, committed, {
    pollMs: opts['poll-ms'],
    timeoutMs: opts['update-timeout-seconds'] * 1000,
    deadline,
    phase: 'polling OpenSearch',
  });
  if (!seen) return undefined;
  return { statementMs: committed - sent, ...seen };
}

/**
 * Polls until a search returns `lane.version` (or newer). A realtime GET runs alongside
 * until it sees the version, which splits the delay into "in the index" and "searchable"
 * (a realtime GET refreshes only the engine's internal reader, so it does not make the
 * change searchable sooner). Times are taken when the answer arrives.
 */
async function waitSearchable(
  client: Client,
  lane: Lane,
  since: number,
  o: { pollMs: number; timeoutMs: number; deadline: Deadline; phase: string },
): Promise<{ indexedMs: number; searchableMs: number } | undefined> {
  let indexedMs: number | undefined;
  for (;;) {
    const [got, found] = await o.deadline.race(
      Promise.all([
        indexedMs === undefined ? realtimeVersion(client, lane.id) : Promise.resolve(undefined),
        searchedVersion(client, lane.id),
      ]),
      o.phase,
    );
    const elapsed = performance.now() - since;
    if (indexedMs === undefined && (got ?? 0) >= lane.version) indexedMs = elapsed;
    if ((found ?? 0) >= lane.version)
      return { indexedMs: indexedMs ?? elapsed, searchableMs: elapsed };
    if (elapsed > o.timeoutMs) return undefined;
    await o.deadline.sleep(o.pollMs, o.phase);
  }
}

async function realtimeVersion(client: Client, id: string): Promise<number | undefined> {
  try {
    const res = await client.get({ index: PRODUCTS_ALIAS, id, _source: false });
    return res.body._version;
  } catch (err) {
    if (err instanceof errors.ResponseError && err.meta.statusCode === 404) return undefined;
    throw err;
  }
}

async function searchedVersion(client: Client, id: string): Promise<number | undefined> {
  const res = await client.search({
    index: PRODUCTS_ALIAS,
    body: { query: { ids: { values: [id] } }, version: true, _source: false, size: 1 },
  });
  const hit = res.body.hits.hits[0] as { _version?: number } | undefined;
  return hit?._version;
}

interface ReportInput {
  command: string;
  opts: Flags;
  indexerMode: string;
  samples: Sample[];
  timedOut: string[];
  seconds: number;
  cpu: CpuUsage;
  machines: string;
}

function report(r: ReportInput): string {
  const of = (pick: (s: Sample) => number, timeouts = 0) => {
    const values = [...r.samples.map(pick), ...Array<number>(timeouts).fill(Infinity)];
    return {
      p50: percentile(values, 0.5),
      p95: percentile(values, 0.95),
      p99: percentile(values, 0.99),
      max: percentile(values, 1),
    };
  };
  // A timed-out update counts as slower than any measured one.
  const searchable = of((s) => s.searchableMs, r.timedOut.length);
  const indexed = of((s) => s.indexedMs);
  const refresh = of((s) => s.searchableMs - s.indexedMs);
  const statement = of((s) => s.statementMs);
  const met = searchable.p95 <= TARGET_P95_MS;
  const row = (name: string, v: ReturnType<typeof of>) =>
    `| ${name} | ${ms(v.p50)} | ${ms(v.p95)} | ${ms(v.p99)} | ${ms(v.max)} |`;
  const cpu =
    r.cpu.processes
      .slice(0, 8)
      .map((p) => `${p.name} ${p.cores.toFixed(2)}`)
      .join(', ') +
    `, everything else ${r.cpu.otherCores.toFixed(2)} (machine ${(r.cpu.machineBusy * 100).toFixed(0)}% busy)`;
  return `
### Freshness: MySQL commit → searchable

${r.samples.length} updates measured (${r.timedOut.length} timed out after ${r.opts['update-timeout-seconds']} s), ${r.opts.concurrency} lanes in parallel, each sequential on its own product, a random 0–${r.opts['max-gap-ms']} ms pause before each update; ${r.opts.warmup} warm-up updates not counted; polled every ${r.opts['poll-ms']} ms; ${(r.samples.length / r.seconds).toFixed(1)} updates/s over ${r.seconds.toFixed(1)} s.

| from the commit (UPDATE acknowledged) until | p50 | p95 | p99 | max |
| --- | --- | --- | --- | --- |
${row('**searchable** (a search on the alias returns the new version)', searchable)}
${row('in the index (a realtime GET returns it)', indexed)}
${row('in the index → searchable (the refresh wait)', refresh)}
${row('the UPDATE itself (sent → acknowledged), not included above', statement)}

Target p95 ≤ ${TARGET_P95_MS} ms: **${met ? 'met' : 'missed'}** (p95 ${ms(searchable.p95)}).

- Indexer: ${r.indexerMode}.
- CPU in cores by process over the measured run: ${cpu}.

${r.machines}
Command: \`${r.command}\`
`;
}

runBench(
  () => parseFlags(flags, process.argv.slice(2)),
  (opts) => opts['timeout-minutes'],
  main,
);
