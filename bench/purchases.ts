/*
 * Purchases benchmark against the running stack (a script, not a test):
 *
 *   npm run build && node dist/bench/purchases.js [--count 2000] [--connections 20]
 *     [--replays 2000] [--rate 100] [--rate-seconds 20] [--products 1]
 *     [--keys uuid|prefixed|sequential] [--timeout-minutes 10] [--vegeta <path>]
 *
 * Load at a fixed concurrency comes from autocannon's programmatic API, load at a fixed
 * arrival rate from vegeta (./vegeta.ts), the engine ceiling from no-op workers started
 * in this process on task queues of their own. See docs/benchmarks.md.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { containsCardNumber } from '../api/purchases/card-data';
import { hashApiKey } from '../common/auth';
import { dataConverterFor } from '../common/codec';
import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import type { PrismaClient } from '../common/db';
import { PURCHASE_STATUSES } from '../workflows/contract';
import { measureBareWorkflow, measurePurchaseShape, startNoopWorkers } from './engine';
import type { EngineOptions, EngineRate, NoopWorkers } from './engine';
import { runLoad } from './http-load';
import type { LoadRun } from './http-load';
import { attackAtRate, DEFAULT_VEGETA } from './vegeta';
import type { RateRun, Target } from './vegeta';
import {
  cpuBetween,
  cpuSnapshot,
  log,
  machine,
  parseFlags,
  requireLoopback,
  runBench,
  summarize,
  throughput,
} from './support';
import type { CpuUsage, Deadline, Machine, Summary, Throughput } from './support';

// Every status a purchase rests in: all but the two it passes through.
const FINAL = PURCHASE_STATUSES.filter((s) => s !== 'RECEIVED' && s !== 'PROCESSING');
const TARGETS = { postP99Ms: 25, replayP99Ms: 5, ratioOfCeiling: 0.7 };

const flags = z.object({
  count: z.coerce.number().int().min(1).max(100_000).default(2000),
  connections: z.coerce.number().int().min(1).max(1000).default(20),
  replays: z.coerce.number().int().min(1).max(100_000).default(2000),
  /** Requests per second, evenly spaced, for the fixed-rate POST, replay and /health runs. */
  rate: z.coerce.number().int().min(1).max(10_000).default(100),
  'rate-seconds': z.coerce.number().int().min(1).max(600).default(20),
  vegeta: z.string().min(1).default(DEFAULT_VEGETA),
  'timeout-minutes': z.coerce.number().min(1).max(120).default(10),
  /** Spread purchases over this many products; 1 is the hot-row case the issue asks for. */
  products: z.coerce.number().int().min(1).max(1000).default(1),
  /**
   * Idempotency-Key shape: uuid (Stripe's advice), prefixed (`bench-<run>-<name>-<uuid>`)
   * or sequential (`bench-<run>-<name>-<i>`, like order numbers).
   */
  keys: z.enum(['uuid', 'prefixed', 'sequential']).default('uuid'),
  api: z.url().default('http://127.0.0.1:3000'),
  'api-key': z.string().min(1).default('sk_test_local'),
});
type Flags = z.infer<typeof flags>;

interface Phase<T> {
  value: T;
  cpu: CpuUsage;
}

const RUN_DIR = join(__dirname, '..', '..', '.stack', 'run');

async function withCpu<T>(run: () => Promise<T>): Promise<Phase<T>> {
  const before = cpuSnapshot(RUN_DIR);
  const value = await run();
  return { value, cpu: cpuBetween(before, cpuSnapshot(RUN_DIR)) };
}

interface EndToEnd {
  load: LoadRun;
  accepted: number;
  /** 202 responses only; postAll counts every status. */
  post: Summary;
  postAll: Summary;
  acceptedPerSecond: number;
  statuses: Record<string, number>;
  approved: Throughput;
}

interface Settled {
  statuses: Record<string, number>;
  /** When each APPROVED purchase got there (its row's last update). */
  approvedAt: number[];
  /** False when a best-effort wait stopped first. */
  complete: boolean;
}

/**
 * Counts a batch's purchases by status until every one is final and there are at least
 * `accepted` of them (a duration-bound run may stop with requests still in flight). With
 * `stopAt`, gives up quietly at that time instead of failing the run.
 */
async function waitForFinal(
  prisma: PrismaClient,
  merchantId: string,
  batch: Batch,
  accepted: number,
  deadline: Deadline,
  phase: string,
  stopAt = Infinity,
): Promise<Settled> {
  const where = {
    merchantId,
    createdAt: { gte: batch.since },
    customerId: { startsWith: batch.customerPrefix },
  };
  let lastReport = Date.now();
  for (;;) {
    const rows = await deadline.race(
      prisma.purchase.groupBy({ by: ['status'], where, _count: { _all: true } }),
      phase,
    );
    const statuses = Object.fromEntries(rows.map((r) => [r.status, r._count._all]));
    const final = FINAL.reduce((n, s) => n + (statuses[s] ?? 0), 0);
    const total = rows.reduce((n, r) => n + r._count._all, 0);
    const complete = final === total && total >= accepted;
    if (complete || Date.now() >= stopAt) {
      const approved = await prisma.purchase.findMany({
        where: { ...where, status: 'APPROVED' },
        select: { updatedAt: true },
      });
      return { statuses, approvedAt: approved.map((a) => a.updatedAt.getTime()), complete };
    }
    if (Date.now() - lastReport > 15_000) {
      log(`  ${phase}: ${final}/${Math.max(total, accepted)} final ${JSON.stringify(statuses)}`);
      lastReport = Date.now();
    }
    await deadline.sleep(250, phase);
  }
}

type KeyStyle = 'uuid' | 'prefixed' | 'sequential';

/**
 * A set of distinct purchases: request i is for customer `${customerPrefix}${i}` (so no
 * two share a fingerprint) under its own Idempotency-Key, shaped by `style`.
 */
interface Batch {
  customerPrefix: string;
  since: Date;
  request: (i: number) => { headers: Record<string, string>; body: string };
}

function purchaseBatch(productIds: string[], runId: string, name: string, style: KeyStyle): Batch {
  const customerPrefix = `cus_bench_${runId}_${name}_`;
  const keys: string[] = [];
  const keyOf = (i: number): string => {
    keys[i] ??=
      style === 'uuid'
        ? randomUUID()
        : style === 'prefixed'
          ? `bench-${runId}-${name}-${randomUUID()}`
          : `bench-${runId}-${name}-${i}`;
    return keys[i];
  };
  return {
    customerPrefix,
    since: new Date(Date.now() - 1000),
    request: (i) => ({
      headers: { 'idempotency-key': keyOf(i) },
      body: JSON.stringify({
        customerId: `${customerPrefix}${i}`,
        items: [{ productId: productIds[i % productIds.length], quantity: 1 }],
        currency: 'BRL',
        paymentMethod: { type: 'card_token', token: 'tok_visa' },
      }),
    }),
  };
}

/**
 * Products for the run. An id the api's raw-card check would refuse (a UUID whose digits
 * happen to pass Luhn) is retired and replaced, so the benchmark measures purchases.
 */
async function createProducts(
  prisma: PrismaClient,
  runId: string,
  count: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (let attempt = 0; ids.length < count; attempt++) {
    const product = await prisma.product.create({
      data: {
        sku: `bench-${runId}-${attempt}`,
        name: `Benchmark product ${runId}`,
        description: 'created by bench/purchases.ts',
        priceMinor: 1990,
        currency: 'BRL',
        stock: 1_000_000,
      },
    });
    if (containsCardNumber({ productId: product.id })) {
      log(`product id ${product.id} looks like a card number to the api; using another`);
      await prisma.product.update({ where: { id: product.id }, data: { active: false } });
    } else {
      ids.push(product.id);
    }
  }
  return ids;
}

const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : 'n/a');
const rate = (v: number) => `${v.toFixed(1)}/s`;
const yes = (met: boolean) => (met ? '**met**' : '**missed**');

async function main(opts: Flags, deadline: Deadline): Promise<void> {
  const command = ['node dist/bench/purchases.js', ...process.argv.slice(2)].join(' ');
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent' });
  const apiUrl = new URL(opts.api);
  requireLoopback(config, { '--api': opts.api });

  const startMachine = machine();
  const runId = `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
  log(`bench run ${runId}: ${command}`);
  log(
    `machine: ${startMachine.cpus} cpus, load ${startMachine.load.map((l) => l.toFixed(2)).join(' ')}`,
  );

  const prisma = createPrisma(config.DATABASE_URL, 4);
  let connection: Connection | undefined;
  let workers: NoopWorkers | undefined;
  try {
    const health = await deadline.race(fetch(new URL('/health', apiUrl)), 'api health check');
    if (!health.ok) throw new Error(`the api at ${opts.api} answered ${health.status} on /health`);
    const key = await prisma.apiKey.findUnique({ where: { keyHash: hashApiKey(opts['api-key']) } });
    if (!key?.merchantId) throw new Error('--api-key is not a merchant key known to the database');
    const merchantId = key.merchantId;
    connection = await deadline.race(
      Connection.connect({ address: config.TEMPORAL_ADDRESS }),
      'connecting to Temporal',
    );
    const client = new Client({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      dataConverter: dataConverterFor(config),
    });

    const productIds = await createProducts(prisma, runId, opts.products);
    log(`products ${productIds.join(', ')} (stock 1,000,000 each, BRL)`);

    const url = new URL('/v1/purchases', apiUrl).toString();
    const auth = { authorization: `Bearer ${opts['api-key']}` };

    // 0. One POST at a time on a quiet stack: the service time, for reference.
    const soloBatch = purchaseBatch(productIds, runId, 'solo', opts.keys);
    const soloCount = Math.min(50, opts.count);
    log(`${soloCount} POSTs on 1 connection...`);
    const solo = await runLoad(
      { url, connections: 1, amount: soloCount, headers: auth, body: soloBatch.request },
      deadline,
      'single-connection POSTs',
    );
    await waitForFinal(
      prisma,
      merchantId,
      soloBatch,
      solo.byStatus['202'] ?? 0,
      deadline,
      'waiting for the single-connection purchases',
    );

    // 1. Engine ceiling first, while the stack is quiet; then its workers go away.
    log('starting no-op workers (bundling the workflow code)...');
    workers = await deadline.race(startNoopWorkers(config, runId), 'starting no-op workers');
    const engine: EngineOptions = {
      client,
      config,
      workers,
      runId,
      count: opts.count,
      concurrency: opts.connections,
      deadline,
    };
    const warmup = Math.min(20, opts.count);
    // Warm-up; the bare one goes one start at a time, which times a start on a quiet engine.
    const quietStart = (await measureBareWorkflow(engine, 'warmup', warmup, 1)).start;
    await measurePurchaseShape(engine, 'warmup', warmup);
    log(`bare no-op workflow x${opts.count}...`);
    const bare = await withCpu(() => measureBareWorkflow(engine, 'run'));
    log(`  ${rate(bare.value.perSecond)}`);
    log(`no-op purchase workflow x${opts.count}...`);
    const ceiling = await withCpu(() => measurePurchaseShape(engine, 'run'));
    log(`  ${rate(ceiling.value.perSecond)} ${JSON.stringify(ceiling.value.results)}`);
    await workers.close();
    workers = undefined;

    // 2. End to end through the running api and workers.
    const batch = purchaseBatch(productIds, runId, 'e2e', opts.keys);
    log(`end to end: ${opts.count} POSTs, ${opts.connections} connections...`);
    const e2e = await withCpu(async (): Promise<EndToEnd> => {
      const t0 = Date.now();
      const load = await runLoad(
        {
          url,
          connections: opts.connections,
          amount: opts.count,
          headers: auth,
          body: batch.request,
        },
        deadline,
        'end-to-end POSTs',
      );
      const accepted = load.byStatus['202'] ?? 0;
      log(`  accepted ${accepted} in ${load.seconds.toFixed(1)} s; waiting for final states...`);
      const final = await waitForFinal(
        prisma,
        merchantId,
        batch,
        accepted,
        deadline,
        'waiting for APPROVED',
      );
      return {
        load,
        accepted,
        post: summarize(load.okLatencies),
        postAll: summarize(load.latencies),
        acceptedPerSecond: accepted / load.seconds,
        statuses: final.statuses,
        approved: throughput(t0, final.approvedAt),
      };
    });
    log(`  ${rate(e2e.value.approved.perSecond)} APPROVED ${JSON.stringify(e2e.value.statuses)}`);

    // 3. Replays of one accepted key (a failed one would create its purchase instead):
    // answered from the database, no workflow start.
    log(`replay: ${opts.replays} POSTs of one key...`);
    const sample = await prisma.purchase.findFirst({
      where: {
        merchantId,
        createdAt: { gte: batch.since },
        status: 'APPROVED',
        customerId: { startsWith: batch.customerPrefix },
      },
      select: { customerId: true },
    });
    if (!sample) throw new Error('no purchase was approved; nothing to replay');
    const first = batch.request(Number(sample.customerId.slice(batch.customerPrefix.length)));
    const replayRun = (connections: number, amount: number) =>
      runLoad(
        { url, connections, amount, headers: { ...auth, ...first.headers }, body: first.body },
        deadline,
        'replays',
      );
    // One connection first: the service time, with no queueing in front of it.
    const replaySolo = await replayRun(1, Math.min(200, opts.replays));
    const replay = await withCpu(() => replayRun(opts.connections, opts.replays));
    const replayLatency = summarize(replay.value.okLatencies);
    log(
      `  p99 ${ms(replayLatency.p99)}; replayed ${replay.value.replayed}/${replay.value.latencies.length}`,
    );

    // 4. Fixed arrival rates (vegeta): replays, then /health as the floor of this machine
    // and this HTTP stack at that moment, then new purchases for the POST target.
    const rateCount = opts.rate * opts['rate-seconds'];
    const atRate = (what: string, target: (i: number) => Target) => {
      log(`fixed rate: ${rateCount} ${what} at ${opts.rate}/s...`);
      return withCpu(() =>
        attackAtRate(opts.vegeta, target, rateCount, opts.rate, deadline, `fixed-rate ${what}`),
      );
    };
    const post = (req: { headers: Record<string, string>; body: string }): Target => ({
      method: 'POST',
      url,
      headers: { ...auth, 'content-type': 'application/json', ...req.headers },
      body: req.body,
    });
    const replayAtRate = await atRate('replays', () => post(first));
    const healthAtRate = await atRate('GET /health', () => ({
      method: 'GET',
      url: new URL('/health', apiUrl).toString(),
      headers: {},
    }));
    const rateBatch = purchaseBatch(productIds, runId, 'rate', opts.keys);
    const fixed = await atRate('POSTs', (i) => post(rateBatch.request(i)));
    const fixedLatency = summarize(fixed.value.okLatencies);
    log(`  p99 ${ms(fixedLatency.p99)} over ${fixedLatency.n} responses`);
    // Let those purchases settle so the shared stack is left quiet; best effort, bounded.
    log('waiting for the fixed-rate purchases to settle...');
    const drainStart = Date.now();
    const drained = await waitForFinal(
      prisma,
      merchantId,
      rateBatch,
      fixed.value.byStatus['202'] ?? 0,
      deadline,
      'waiting for the fixed-rate purchases',
      Date.now() + Math.max(0, deadline.left() - 20_000),
    );
    const drainSeconds = (Date.now() - drainStart) / 1000;

    const endMachine = machine();
    process.stdout.write(
      report({
        command,
        opts,
        startMachine,
        endMachine,
        bare: bare.value,
        ceiling,
        e2e,
        replay,
        replayLatency,
        replaySolo,
        solo,
        quietStart,
        fixed,
        fixedLatency,
        replayAtRate,
        healthAtRate,
        drained,
        drainSeconds,
      }),
    );
  } finally {
    await workers?.close().catch((err: unknown) => log(`closing workers: ${String(err)}`));
    await connection?.close().catch((err: unknown) => log(`closing Temporal: ${String(err)}`));
    await prisma.$disconnect();
  }
}

interface ReportInput {
  command: string;
  opts: Flags;
  startMachine: Machine;
  endMachine: Machine;
  bare: EngineRate;
  ceiling: Phase<EngineRate>;
  e2e: Phase<EndToEnd>;
  replay: Phase<LoadRun>;
  replayLatency: Summary;
  replaySolo: LoadRun;
  solo: LoadRun;
  quietStart: Summary;
  fixed: Phase<RateRun>;
  fixedLatency: Summary;
  replayAtRate: Phase<RateRun>;
  healthAtRate: Phase<RateRun>;
  drained: Settled;
  drainSeconds: number;
}

function report(r: ReportInput): string {
  const e = r.e2e.value;
  const ratio = e.approved.perSecond / r.ceiling.value.perSecond;
  const p99Ratio = e.approved.p99PerSecond / r.ceiling.value.p99PerSecond;
  const tp = (t: Throughput) =>
    `${rate(t.perSecond)} (${t.count} in ${t.seconds.toFixed(1)} s; to the 99th percentile ${rate(t.p99PerSecond)})`;
  const fixedMet = r.fixedLatency.p99 <= TARGETS.postP99Ms;
  const ratioMet = ratio >= TARGETS.ratioOfCeiling;
  const replayFixed = summarize(r.replayAtRate.value.okLatencies);
  const health = summarize(r.healthAtRate.value.okLatencies);
  const replayMet = replayFixed.p99 <= TARGETS.replayP99Ms;
  const solo = summarize(r.replaySolo.okLatencies);
  const soloPost = summarize(r.solo.okLatencies);
  const c = r.opts.connections;
  const load = (m: Machine) => m.load.map((l) => l.toFixed(2)).join(' / ');
  const statuses = (s: Record<string, number>) =>
    Object.entries(s)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const non202 = (run: Pick<LoadRun, 'byStatus' | 'errors'>) =>
    Object.entries(run.byStatus)
      .filter(([code]) => code !== '202')
      .map(([code, n]) => `${n}×${code}`)
      .concat(run.errors > 0 ? [`${run.errors} errors`] : [])
      .join(', ') || 'none';
  const cpu = (u: CpuUsage) =>
    u.processes
      .slice(0, 7)
      .map((p) => `${p.name} ${p.cores.toFixed(2)}`)
      .join(', ') +
    `, everything else on the machine ${u.otherCores.toFixed(2)}` +
    ` (machine ${(u.machineBusy * 100).toFixed(0)}% busy, ${(u.machineSteal * 100).toFixed(0)}% steal)`;

  return `
| measure | result | target | verdict |
| --- | --- | --- | --- |
| accepted/s (${e.accepted} accepted of ${r.opts.count} POSTs, ${c} connections, unthrottled, ${r.opts.products} product${r.opts.products > 1 ? 's' : ''}, ${r.opts.keys} keys) | ${rate(e.acceptedPerSecond)} | | |
| POST latency p50 / p99 of the 202s, same run | ${ms(e.post.p50)} / ${ms(e.post.p99)} | | |
| POST latency p50 / p99, 1 connection on a quiet stack (${soloPost.n} POSTs; service time, for reference) | ${ms(soloPost.p50)} / ${ms(soloPost.p99)} | | |
| APPROVED/s end to end (first POST → last APPROVED) | ${tp(e.approved)} | | |
| engine ceiling: purchase workflow, ${r.opts.count} starts at ${c} in flight, 9 no-op activities on 2 queues | ${tp(r.ceiling.value)} | | |
| bare no-op workflow, for reference | ${tp(r.bare)} | | |
| Temporal start call p50 / p99: one at a time (${r.quietStart.n}); ${c} in flight, purchase workflow (${r.ceiling.value.start.n}) | ${ms(r.quietStart.p50)} / ${ms(r.quietStart.p99)}; ${ms(r.ceiling.value.start.p50)} / ${ms(r.ceiling.value.start.p99)} | | |
| APPROVED/s ÷ engine ceiling | ${(ratio * 100).toFixed(0)}% (to the 99th percentile ${(p99Ratio * 100).toFixed(0)}%) | ≥ ${TARGETS.ratioOfCeiling * 100}% | ${yes(ratioMet)} |
| POST p50 / p99 at a fixed ${r.opts.rate} req/s, evenly spaced (vegeta; ${r.fixedLatency.n} accepted, ${rate(r.fixed.value.achieved)} achieved) | ${ms(r.fixedLatency.p50)} / ${ms(r.fixedLatency.p99)} | p99 ≤ ${TARGETS.postP99Ms} ms | ${yes(fixedMet)} |
| idempotent replay p50 / p99 at a fixed ${r.opts.rate} req/s, evenly spaced (vegeta; ${replayFixed.n} replays) | ${ms(replayFixed.p50)} / ${ms(replayFixed.p99)} | p99 ≤ ${TARGETS.replayP99Ms} ms | ${yes(replayMet)} |
| GET /health p50 / p99 at the same rate, just before (the floor of this machine and HTTP stack) | ${ms(health.p50)} / ${ms(health.p99)} | | |
| idempotent replay p50 / p99 (${r.replayLatency.n} POSTs of one key, ${c} connections, unthrottled; ${rate(r.replayLatency.n / r.replay.value.seconds)}) | ${ms(r.replayLatency.p50)} / ${ms(r.replayLatency.p99)} | | |
| idempotent replay p50 / p99, 1 connection (${solo.n} POSTs; service time, for reference) | ${ms(solo.p50)} / ${ms(solo.p99)} | | |

Targets: POST p99 ≤ ${TARGETS.postP99Ms} ms at ${r.opts.rate} req/s ${yes(fixedMet)}; end to end ≥ ${TARGETS.ratioOfCeiling * 100}% of the engine ceiling ${yes(ratioMet)}; replay p99 ≤ ${TARGETS.replayP99Ms} ms ${yes(replayMet)}.

- Outcomes of the end-to-end purchases: ${statuses(e.statuses)}; responses other than 202: ${non202(e.load)}; p50 / p99 over every response ${ms(e.postAll.p50)} / ${ms(e.postAll.p99)}.
- Replays answered \`Idempotent-Replayed: true\`: ${r.replay.value.replayed} of ${r.replayLatency.n} unthrottled, ${r.replayAtRate.value.replayed} of ${replayFixed.n} at the fixed rate; other than 202: ${non202(r.replay.value)}; ${non202(r.replayAtRate.value)}.
- Fixed-rate POSTs: other than 202: ${non202(r.fixed.value)}; vegeta sends on schedule with as many workers as it needs (an open model), so a slow answer does not hold back the requests behind it. Its purchases ${r.drained.complete ? 'were all final' : 'were still not all final'} ${r.drainSeconds.toFixed(1)} s after the last POST (${statuses(r.drained.statuses)}).
- Max latency: POST ${ms(e.post.max)}, fixed rate ${ms(r.fixedLatency.max)}, replay ${ms(r.replayLatency.max)}.
- CPU in cores by process, end to end: ${cpu(r.e2e.cpu)}.
- CPU in cores by process, engine ceiling: ${cpu(r.ceiling.cpu)}.
- CPU in cores by process, replays: ${cpu(r.replay.cpu)}.
- CPU in cores by process, fixed-rate POSTs: ${cpu(r.fixed.cpu)}.
- CPU in cores by process, fixed-rate replays: ${cpu(r.replayAtRate.cpu)}.
- Machine: ${r.startMachine.cpus} × ${r.startMachine.cpuModel}, ${r.startMachine.memoryGiB} GiB, Node ${r.startMachine.node}; load average (1/5/15 min) ${load(r.startMachine)} at the start, ${load(r.endMachine)} at the end.
- Command: \`${r.command}\`
`;
}

runBench(
  () => parseFlags(flags, process.argv.slice(2)),
  (opts) => opts['timeout-minutes'],
  main,
);
