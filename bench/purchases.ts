/*
 * Purchases benchmark against the running stack (a script, not a test):
 *
 *   npm run build && node dist/bench/purchases.js [--count 2000] [--connections 20]
 *     [--replays 2000] [--rate 100] [--rate-seconds 20] [--timeout-minutes 10]
 *
 * HTTP load comes from autocannon's programmatic API; the engine ceiling from no-op
 * workers started in this process on task queues of their own. See docs/benchmarks.md.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { hashApiKey } from '../common/auth';
import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import type { PrismaClient } from '../common/db';
import type { PurchaseStatus } from '../workflows/contract';
import { measureBareWorkflow, measurePurchaseShape, startNoopWorkers } from './engine';
import type { EngineOptions, EngineRate, NoopWorkers } from './engine';
import { runLoad } from './http-load';
import type { LoadRun } from './http-load';
import {
  cpuBetween,
  cpuSnapshot,
  createDeadline,
  DeadlineExceeded,
  machine,
  summarize,
} from './support';
import type { CpuUsage, Deadline, Machine, Summary } from './support';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const FINAL: PurchaseStatus[] = [
  'APPROVED',
  'DECLINED',
  'REJECTED',
  'DUPLICATE',
  'FAILED',
  'CANCELED',
];
const TARGETS = { postP99Ms: 25, replayP99Ms: 5, ratioOfCeiling: 0.7 };

const flags = z.object({
  count: z.coerce.number().int().min(1).max(100_000).default(2000),
  connections: z.coerce.number().int().min(1).max(1000).default(20),
  replays: z.coerce.number().int().min(1).max(100_000).default(2000),
  rate: z.coerce.number().int().min(1).max(10_000).default(100),
  'rate-seconds': z.coerce.number().int().min(1).max(600).default(20),
  'timeout-minutes': z.coerce.number().min(1).max(120).default(10),
  /** Spread purchases over this many products; 1 is the hot-row case the issue asks for. */
  products: z.coerce.number().int().min(1).max(1000).default(1),
  api: z.url().default('http://127.0.0.1:3000'),
  'api-key': z.string().min(1).default('sk_test_local'),
});
type Flags = z.infer<typeof flags>;

function parseFlags(argv: string[]): Flags {
  const names = Object.keys(flags.shape) as (keyof Flags)[];
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
  });
  const parsed = flags.safeParse(values);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`);
    throw new Error(`bad flags: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Every address the benchmark talks to must be this machine. */
function requireLoopback(what: string, host: string): void {
  if (!LOOPBACK.has(host))
    throw new Error(`${what} points at ${host}; the benchmark only talks to 127.0.0.1`);
}

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
  approved: number;
  seconds: number;
  approvedPerSecond: number;
}

/**
 * Counts this run's purchases by status until every one is final and there are at least
 * `accepted` of them (a duration-bound run may stop with requests still in flight).
 */
async function waitForFinal(
  prisma: PrismaClient,
  merchantId: string,
  prefix: string,
  since: Date,
  accepted: number,
  deadline: Deadline,
  phase: string,
): Promise<{ statuses: Record<string, number>; lastApprovedAt: Date | undefined }> {
  const where = { merchantId, createdAt: { gte: since }, idempotencyKey: { startsWith: prefix } };
  let lastReport = Date.now();
  for (;;) {
    const rows = await deadline.race(
      prisma.purchase.groupBy({ by: ['status'], where, _count: { _all: true } }),
      phase,
    );
    const statuses = Object.fromEntries(rows.map((r) => [r.status, r._count._all]));
    const final = FINAL.reduce((n, s) => n + (statuses[s] ?? 0), 0);
    const total = rows.reduce((n, r) => n + r._count._all, 0);
    if (final === total && total >= accepted) {
      const last = await prisma.purchase.aggregate({
        where: { ...where, status: 'APPROVED' },
        _max: { updatedAt: true },
      });
      return { statuses, lastApprovedAt: last._max.updatedAt ?? undefined };
    }
    if (Date.now() - lastReport > 10_000) {
      log(`  ${phase}: ${final}/${accepted} final ${JSON.stringify(statuses)}`);
      lastReport = Date.now();
    }
    await deadline.sleep(250, phase);
  }
}

function uniquePurchase(productIds: string[], prefix: string) {
  return (i: number) => ({
    headers: { 'idempotency-key': `${prefix}${i}` },
    body: JSON.stringify({
      customerId: `cus_${prefix}${i}`,
      items: [{ productId: productIds[i % productIds.length], quantity: 1 }],
      currency: 'BRL',
      paymentMethod: { type: 'card_token', token: 'tok_visa' },
    }),
  });
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : 'n/a');
const rate = (v: number) => `${v.toFixed(1)}/s`;
const yes = (met: boolean) => (met ? '**met**' : '**missed**');

async function main(): Promise<void> {
  const opts = parseFlags(process.argv.slice(2));
  const command = ['node dist/bench/purchases.js', ...process.argv.slice(2)].join(' ');
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent' });
  const apiUrl = new URL(opts.api);
  requireLoopback('--api', apiUrl.hostname);
  requireLoopback('DATABASE_URL', new URL(config.DATABASE_URL).hostname);
  requireLoopback('TEMPORAL_ADDRESS', config.TEMPORAL_ADDRESS.replace(/:\d+$/, ''));

  const deadline = createDeadline(opts['timeout-minutes'] * 60_000);
  process.once('SIGINT', () => {
    log('interrupted: stopping the current phase and cleaning up');
    deadline.stop('SIGINT');
  });
  // Should cleanup itself hang, still end.
  setTimeout(() => {
    log('cleanup did not finish within 60 s of the time budget; exiting');
    process.exit(2);
  }, deadline.left() + 60_000).unref();

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
    const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });

    const productIds: string[] = [];
    for (let p = 0; p < opts.products; p++) {
      const product = await prisma.product.create({
        data: {
          sku: `bench-${runId}-${p}`,
          name: `Benchmark product ${runId}`,
          description: 'created by bench/purchases.ts',
          priceMinor: 1990,
          currency: 'BRL',
          stock: 1_000_000,
        },
      });
      productIds.push(product.id);
    }
    log(`products ${productIds.join(', ')} (stock 1,000,000 each, BRL)`);

    // 1. Engine ceiling first, while the stack is quiet, then the workers go away.
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
    await measureBareWorkflow(engine, 'warmup', 50);
    await measurePurchaseShape(engine, 'warmup', 50);
    log(`bare no-op workflow x${opts.count}...`);
    const bare = await withCpu(() => measureBareWorkflow(engine, 'run'));
    log(`  ${rate(bare.value.perSecond)}`);
    log(`no-op purchase workflow x${opts.count}...`);
    const ceiling = await withCpu(() => measurePurchaseShape(engine, 'run'));
    log(`  ${rate(ceiling.value.perSecond)} ${JSON.stringify(ceiling.value.results)}`);
    await workers.close();
    workers = undefined;

    // 2. End to end through the running api and workers.
    const url = new URL('/v1/purchases', apiUrl).toString();
    const auth = { authorization: `Bearer ${opts['api-key']}` };
    const e2ePrefix = `bench-${runId}-e2e-`;
    log(`end to end: ${opts.count} POSTs, ${opts.connections} connections...`);
    const since = new Date(Date.now() - 1000);
    const e2e = await withCpu(async (): Promise<EndToEnd> => {
      const t0 = Date.now();
      const load = await runLoad(
        {
          url,
          connections: opts.connections,
          amount: opts.count,
          headers: auth,
          body: uniquePurchase(productIds, e2ePrefix),
        },
        deadline,
        'end-to-end POSTs',
      );
      const accepted = load.byStatus['202'] ?? 0;
      log(`  accepted ${accepted} in ${load.seconds.toFixed(1)} s; waiting for final states...`);
      const final = await waitForFinal(
        prisma,
        merchantId,
        e2ePrefix,
        since,
        accepted,
        deadline,
        'waiting for APPROVED',
      );
      const approved = final.statuses.APPROVED ?? 0;
      const seconds = ((final.lastApprovedAt?.getTime() ?? Date.now()) - t0) / 1000;
      return {
        load,
        accepted,
        post: summarize(load.okLatencies),
        postAll: summarize(load.latencies),
        acceptedPerSecond: accepted / load.seconds,
        statuses: final.statuses,
        approved,
        seconds,
        approvedPerSecond: approved / seconds,
      };
    });
    log(`  ${rate(e2e.value.approvedPerSecond)} APPROVED ${JSON.stringify(e2e.value.statuses)}`);

    // 3. Replays of one key: answered from the database, no workflow start.
    log(`replay: ${opts.replays} POSTs of one key...`);
    // An accepted key: replaying one that failed would create its purchase instead.
    const sample = await prisma.purchase.findFirst({
      where: { merchantId, createdAt: { gte: since }, idempotencyKey: { startsWith: e2ePrefix } },
      select: { idempotencyKey: true },
    });
    if (!sample) throw new Error('no purchase was accepted; nothing to replay');
    const first = uniquePurchase(
      productIds,
      e2ePrefix,
    )(Number(sample.idempotencyKey.slice(e2ePrefix.length)));
    const replay = await runLoad(
      {
        url,
        connections: opts.connections,
        amount: opts.replays,
        headers: { ...auth, ...first.headers },
        body: first.body,
      },
      deadline,
      'replays',
    );
    const replayLatency = summarize(replay.okLatencies);
    log(`  p99 ${ms(replayLatency.p99)}; replayed ${replay.replayed}/${replay.latencies.length}`);

    // 4. Fixed arrival rate for the POST latency target.
    const ratePrefix = `bench-${runId}-rate-`;
    log(`fixed rate: ${opts.rate} req/s for ${opts['rate-seconds']} s...`);
    const rateSince = new Date(Date.now() - 1000);
    const fixed = await withCpu(() =>
      runLoad(
        {
          url,
          connections: opts.connections,
          duration: opts['rate-seconds'],
          overallRate: opts.rate,
          headers: auth,
          body: uniquePurchase(productIds, ratePrefix),
        },
        deadline,
        'fixed-rate POSTs',
      ),
    );
    const fixedLatency = summarize(fixed.value.okLatencies);
    const fixedAccepted = fixed.value.byStatus['202'] ?? 0;
    log(`  p99 ${ms(fixedLatency.p99)} over ${fixedLatency.n} responses`);
    // Let the purchases it made settle, so the stack is left quiet; bounded.
    const drainStart = Date.now();
    const drained = await waitForFinal(
      prisma,
      merchantId,
      ratePrefix,
      rateSince,
      fixedAccepted,
      deadline,
      'waiting for the fixed-rate purchases',
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
        fixed,
        fixedLatency,
        drained: drained.statuses,
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
  replay: LoadRun;
  replayLatency: Summary;
  fixed: Phase<LoadRun>;
  fixedLatency: Summary;
  drained: Record<string, number>;
  drainSeconds: number;
}

function report(r: ReportInput): string {
  const e = r.e2e.value;
  const ratio = e.approvedPerSecond / r.ceiling.value.perSecond;
  const fixedMet = r.fixedLatency.p99 <= TARGETS.postP99Ms;
  const ratioMet = ratio >= TARGETS.ratioOfCeiling;
  const replayMet = r.replayLatency.p99 <= TARGETS.replayP99Ms;
  const fixedRate = r.fixedLatency.n / r.fixed.value.seconds;
  const c = r.opts.connections;
  const load = (m: Machine) => m.load.map((l) => l.toFixed(2)).join(' / ');
  const statuses = (s: Record<string, number>) =>
    Object.entries(s)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const non202 = (run: LoadRun) =>
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
| measure | result | target | |
| --- | --- | --- | --- |
| accepted/s (${e.accepted} accepted of ${r.opts.count} POSTs, ${c} connections, unthrottled, ${r.opts.products} product${r.opts.products > 1 ? 's' : ''}) | ${rate(e.acceptedPerSecond)} | | |
| POST latency p50 / p99 of the 202s, same run | ${ms(e.post.p50)} / ${ms(e.post.p99)} | | |
| APPROVED/s end to end (first POST → last APPROVED) | ${rate(e.approvedPerSecond)} (${e.approved} in ${e.seconds.toFixed(1)} s) | | |
| engine ceiling: purchase workflow, ${r.opts.count} starts at ${c} in flight, 9 no-op activities on 2 queues | ${rate(r.ceiling.value.perSecond)} (${r.ceiling.value.seconds.toFixed(1)} s) | | |
| bare no-op workflow, for reference | ${rate(r.bare.perSecond)} (${r.bare.seconds.toFixed(1)} s) | | |
| APPROVED/s ÷ engine ceiling | ${(ratio * 100).toFixed(0)}% | ≥ ${TARGETS.ratioOfCeiling * 100}% | ${yes(ratioMet)} |
| POST p50 / p99 at a fixed ${r.opts.rate} req/s for ${r.opts['rate-seconds']} s (${r.fixedLatency.n} requests, ${fixedRate.toFixed(1)} req/s achieved) | ${ms(r.fixedLatency.p50)} / ${ms(r.fixedLatency.p99)} | p99 ≤ ${TARGETS.postP99Ms} ms | ${yes(fixedMet)} |
| idempotent replay p50 / p99 (${r.replayLatency.n} POSTs of one key, ${c} connections) | ${ms(r.replayLatency.p50)} / ${ms(r.replayLatency.p99)} | p99 ≤ ${TARGETS.replayP99Ms} ms | ${yes(replayMet)} |

Targets: POST p99 ≤ ${TARGETS.postP99Ms} ms at ${r.opts.rate} req/s ${yes(fixedMet)}; end to end ≥ ${TARGETS.ratioOfCeiling * 100}% of the engine ceiling ${yes(ratioMet)}; replay p99 ≤ ${TARGETS.replayP99Ms} ms ${yes(replayMet)}.

- Outcomes of the end-to-end purchases: ${statuses(e.statuses)}; responses other than 202: ${non202(e.load)}; p50 / p99 over every response ${ms(e.postAll.p50)} / ${ms(e.postAll.p99)}.
- Replays answered \`Idempotent-Replayed: true\`: ${r.replay.replayed} of ${r.replayLatency.n}; other than 202: ${non202(r.replay)}.
- Fixed-rate run: other than 202: ${non202(r.fixed.value)}; autocannon's p99 corrected for coordinated omission ${r.fixed.value.autocannonP99} ms; its purchases were all final ${r.drainSeconds.toFixed(1)} s after the last POST (${statuses(r.drained)}).
- Max latency: POST ${ms(e.post.max)}, fixed rate ${ms(r.fixedLatency.max)}, replay ${ms(r.replayLatency.max)}.
- CPU in cores by process, end to end: ${cpu(r.e2e.cpu)}.
- CPU in cores by process, engine ceiling: ${cpu(r.ceiling.cpu)}.
- CPU in cores by process, fixed rate: ${cpu(r.fixed.cpu)}.
- Machine: ${r.startMachine.cpus} × ${r.startMachine.cpuModel}, ${r.startMachine.memoryGiB} GiB, Node ${r.startMachine.node}; load average (1/5/15 min) ${load(r.startMachine)} at the start, ${load(r.endMachine)} at the end.
- Command: \`${r.command}\`
`;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof DeadlineExceeded) log(err.message);
    else log(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
