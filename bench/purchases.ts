/*
 * Purchases benchmark against the running stack (a script, not a test):
 *
 *   npm run build && node dist/bench/purchases.js [--count 400] [--connections 20]
 *     [--rate 100] [--rate-seconds 30] [--replicas 1,2] [--products 1]
 *     [--timeout-minutes 30] [--vegeta <path>]
 *
 * HTTP load comes from vegeta (./vegeta.ts), the engine's own rate from a bare workflow
 * on a worker in this process (./engine.ts). The api phases run
 * once per entry of --replicas: on the stack as it is, then with a second api and a second
 * of each worker started here (./replicas.ts), the requests alternating between the apis.
 * See docs/benchmarks.md.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { hashApiKey } from '../common/auth';
import { dataConverterFor } from '../common/codec';
import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import type { PrismaClient } from '../common/db';
import { startBareEngine } from './engine';
import type { BareEngine } from './engine';
import { startSecondReplicas } from './replicas';
import type { Replicas } from './replicas';
import {
  benchProducts,
  cpuBetween,
  cpuSnapshot,
  log,
  machine,
  parseFlags,
  purchaseTarget,
  requireLoopback,
  runBench,
  stackPids,
  summarize,
  throughput,
} from './support';
import type { CpuUsage, Deadline, Summary, Throughput } from './support';
import { attack, DEFAULT_VEGETA } from './vegeta';
import type { Pace, RateRun, Target } from './vegeta';

const OPEN = new Set(['RECEIVED', 'PROCESSING']);
const SECOND_API_PORT = 3010;

const flags = z.object({
  count: z.coerce.number().int().min(1).max(100_000).default(400),
  connections: z.coerce.number().int().min(1).max(1000).default(20),
  /** Requests per second, evenly spaced, for the fixed-rate phases. */
  rate: z.coerce.number().int().min(1).max(10_000).default(100),
  'rate-seconds': z.coerce.number().int().min(1).max(600).default(30),
  replicas: z
    .string()
    .regex(/^[12](,[12])*$/, 'a comma-separated list of 1 and 2')
    .default('1,2')
    .transform((s) => s.split(',').map(Number)),
  /** Spread purchases over this many products; 1 is the hot row. */
  products: z.coerce.number().int().min(1).max(1000).default(1),
  vegeta: z.string().min(1).default(DEFAULT_VEGETA),
  'timeout-minutes': z.coerce.number().min(1).max(180).default(30),
  api: z.url().default('http://127.0.0.1:3000'),
  'api-key': z.string().min(1).default('sk_test_local'),
});
type Flags = z.infer<typeof flags>;

interface Bench {
  opts: Flags;
  prisma: PrismaClient;
  merchantId: string;
  productIds: string[];
  runId: string;
  deadline: Deadline;
}

/** Distinct purchases: request i is for its own customer under its own Idempotency-Key. */
interface Batch {
  customerPrefix: string;
  since: Date;
  target: (i: number) => Target;
}

function batch(b: Bench, apis: string[], name: string): Batch {
  const customerPrefix = `cus_bench_${b.runId}_${name}_`;
  const keys: string[] = [];
  return {
    customerPrefix,
    since: new Date(Date.now() - 1000),
    target: (i) => {
      keys[i] ??= randomUUID();
      const productId = b.productIds[i % b.productIds.length]!;
      const api = apis[i % apis.length]!;
      return purchaseTarget(api, b.opts['api-key'], keys[i], `${customerPrefix}${i}`, productId);
    },
  };
}

/**
 * Waits until every purchase of the batch is final and there are at least `accepted` of
 * them; gives up quietly at `stopAt`. Returns the statuses and when each APPROVED one got
 * there (its row's last update).
 */
async function settle(b: Bench, of: Batch, accepted: number, stopAt = Infinity) {
  const where = { merchantId: b.merchantId, createdAt: { gte: of.since } };
  const mine = { ...where, customerId: { startsWith: of.customerPrefix } };
  for (;;) {
    const rows = await b.prisma.purchase.groupBy({
      by: ['status'],
      where: mine,
      _count: { _all: true },
    });
    const statuses = Object.fromEntries(rows.map((r) => [r.status, r._count._all]));
    const total = rows.reduce((n, r) => n + r._count._all, 0);
    const open = rows.filter((r) => OPEN.has(r.status)).reduce((n, r) => n + r._count._all, 0);
    const complete = open === 0 && total >= accepted;
    if (complete || Date.now() >= stopAt) {
      const approved = await b.prisma.purchase.findMany({
        where: { ...mine, status: 'APPROVED' },
        select: { updatedAt: true, customerId: true },
      });
      return { statuses, approved, complete };
    }
    await b.deadline.sleep(250, `waiting for ${of.customerPrefix} to settle`);
  }
}

async function withCpu<T>(pids: Map<string, string>, run: () => Promise<T>) {
  const before = cpuSnapshot(pids);
  const value = await run();
  return { value, cpu: cpuBetween(before, cpuSnapshot(pids)) };
}

interface ApiFigures {
  replicas: number;
  solo: Summary;
  soloReplay: Summary;
  soloHealth: Summary;
  posts: RateRun;
  accepted: number;
  acceptedPerSecond: number;
  statuses: Record<string, number>;
  approved: Throughput;
  cpu: CpuUsage;
  fixed: RateRun;
  replay: RateRun;
  health: RateRun;
  drainSeconds: number;
  drained: boolean;
}

/** Every api figure of the issue, with `apis` sharing the load. */
async function apiPhases(b: Bench, apis: string[], pids: Map<string, string>): Promise<ApiFigures> {
  const { opts, deadline } = b;
  const n = apis.length;
  const load = (what: string, of: (i: number) => Target, count: number, pace: Pace) => {
    log(`  ${what}: ${count} requests, ${JSON.stringify(pace)}`);
    return attack(opts.vegeta, of, count, pace, deadline, `${what} (${n} replicas)`);
  };

  // One request at a time: the service time of a new purchase, and below it those of a
  // replay (the same key again: one indexed query) and of /health (no database at all).
  const one = { workers: 1 };
  const solo = batch(b, apis, `solo${n}`);
  const soloRun = await load('POSTs on 1 connection', solo.target, 50, one);
  await settle(b, solo, soloRun.byStatus['202'] ?? 0);
  const soloReplay = await load('replays on 1 connection', () => solo.target(0), 50, one);
  const health = (i: number): Target => ({
    method: 'GET',
    url: `${apis[i % n]!}/health`,
    headers: {},
  });
  const soloHealth = await load('GET /health on 1 connection', health, 50, one);

  // Unthrottled, then every purchase to its end: accepted/s, APPROVED/s and CPU.
  const e2e = batch(b, apis, `e2e${n}`);
  const t0 = Date.now();
  const run = await withCpu(pids, async () => {
    const posts = await load('end-to-end POSTs', e2e.target, opts.count, {
      workers: opts.connections,
    });
    return { posts, settled: await settle(b, e2e, posts.byStatus['202'] ?? 0) };
  });
  const { posts, settled } = run.value;
  const approved = throughput(
    t0,
    settled.approved.map((a) => a.updatedAt.getTime()),
  );
  log(`  APPROVED ${approved.perSecond.toFixed(1)}/s ${JSON.stringify(settled.statuses)}`);

  // Fixed arrival rates: replays of one approved purchase, /health, then new purchases.
  const count = opts.rate * opts['rate-seconds'];
  const pace = { rate: opts.rate };
  const sample = settled.approved[0];
  if (!sample) throw new Error('no purchase was approved; nothing to replay');
  const replayed = e2e.target(Number(sample.customerId.slice(e2e.customerPrefix.length)));
  const replay = await load(
    'replays',
    (i) => ({ ...replayed, url: apis[i % n]! + '/v1/purchases' }),
    count,
    pace,
  );
  const healthAtRate = await load('GET /health', health, count, pace);
  const rated = batch(b, apis, `rate${n}`);
  const fixed = await load('POSTs', rated.target, count, pace);
  const drainStart = Date.now();
  const drained = await settle(
    b,
    rated,
    fixed.byStatus['202'] ?? 0,
    Date.now() + Math.max(0, deadline.left() - 60_000),
  );
  return {
    replicas: n,
    solo: summarize(soloRun.okLatencies),
    posts,
    accepted: posts.byStatus['202'] ?? 0,
    acceptedPerSecond: (posts.byStatus['202'] ?? 0) / posts.seconds,
    statuses: settled.statuses,
    approved,
    cpu: run.cpu,
    fixed,
    replay,
    health: healthAtRate,
    soloReplay: summarize(soloReplay.okLatencies),
    soloHealth: summarize(soloHealth.okLatencies),
    drainSeconds: (Date.now() - drainStart) / 1000,
    drained: drained.complete,
  };
}

async function main(opts: Flags, deadline: Deadline): Promise<void> {
  const command = ['node dist/bench/purchases.js', ...process.argv.slice(2)].join(' ');
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent' });
  requireLoopback(config, { '--api': opts.api });
  const runId = `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
  const start = machine();
  log(`bench run ${runId}: ${command}`);

  const prisma = createPrisma(config.DATABASE_URL, 4);
  let connection: Connection | undefined;
  let engine: BareEngine | undefined;
  let replicas: Replicas | undefined;
  try {
    const key = await prisma.apiKey.findUnique({ where: { keyHash: hashApiKey(opts['api-key']) } });
    if (!key?.merchantId) throw new Error('--api-key is not a merchant key known to the database');
    const b: Bench = {
      opts,
      prisma,
      merchantId: key.merchantId,
      productIds: await benchProducts(
        prisma,
        `bench-${runId}`,
        opts.products,
        'bench/purchases.ts',
      ),
      runId,
      deadline,
    };

    // The engine's own rate first, on a quiet stack; its workers then go away.
    connection = await deadline.race(
      Connection.connect({ address: config.TEMPORAL_ADDRESS }),
      'connecting to Temporal',
    );
    const client = new Client({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      dataConverter: dataConverterFor(config),
    });
    engine = await deadline.race(
      startBareEngine(client, config, runId, deadline),
      'starting the bare worker',
    );
    await engine.measure('warmup', 20, opts.connections);
    log(`bare workflow x${opts.count}...`);
    const bare = await withCpu(stackPids(), () =>
      engine!.measure('run', opts.count, opts.connections),
    );
    await engine.close();
    engine = undefined;

    const figures: ApiFigures[] = [];
    for (const n of opts.replicas) {
      log(`api phases with ${n} replica${n > 1 ? 's' : ''}`);
      if (n === 2) {
        replicas = await startSecondReplicas(SECOND_API_PORT, deadline);
        figures.push(await apiPhases(b, [opts.api, replicas.apiUrl], stackPids(replicas.pids)));
        await replicas.stop();
        replicas = undefined;
      } else {
        figures.push(await apiPhases(b, [opts.api], stackPids()));
      }
    }
    process.stdout.write(report(command, opts, { bare, figures, start, end: machine() }));
  } finally {
    await replicas?.stop();
    await engine?.close().catch((err: unknown) => log(`closing the bare worker: ${String(err)}`));
    await connection?.close().catch((err: unknown) => log(`closing Temporal: ${String(err)}`));
    await prisma.$disconnect();
  }
}

const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : 'n/a');
const perS = (v: number) => `${v.toFixed(1)}/s`;
const verdict = (met: boolean) => (met ? '**met**' : '**missed**');

interface Results {
  bare: { value: Throughput; cpu: CpuUsage };
  figures: ApiFigures[];
  start: ReturnType<typeof machine>;
  end: ReturnType<typeof machine>;
}

function report(command: string, opts: Flags, r: Results): string {
  const bare = r.bare.value.perSecond;
  const rows: [string, (f: ApiFigures) => string, string, ((f: ApiFigures) => boolean)?][] = [
    [
      `bare workflow, ${opts.count} at ${opts.connections} in flight (measured once)`,
      () => perS(bare),
      'reference',
    ],
    [
      'APPROVED/s end to end (first POST → last APPROVED)',
      (f) =>
        `${perS(f.approved.perSecond)} (${((f.approved.perSecond / bare) * 100).toFixed(0)} % of bare)`,
      '≥ 50 % of bare',
      (f) => f.approved.perSecond >= bare / 2,
    ],
    [
      'POST p50 / p99, 1 connection (50 POSTs)',
      (f) => `${ms(f.solo.p50)} / ${ms(f.solo.p99)}`,
      'p50 ≤ 5 ms',
      (f) => f.solo.p50 <= 5,
    ],
    [
      'replay p50 / p99, 1 connection',
      (f) => `${ms(f.soloReplay.p50)} / ${ms(f.soloReplay.p99)}`,
      '',
    ],
    [
      'GET /health p50 / p99, 1 connection',
      (f) => `${ms(f.soloHealth.p50)} / ${ms(f.soloHealth.p99)}`,
      '',
    ],
    [
      `accepted/s unthrottled, ${opts.connections} connections (${opts.count} POSTs)`,
      (f) => `${perS(f.acceptedPerSecond)} (${f.accepted} accepted)`,
      '≥ 300/s',
      (f) => f.acceptedPerSecond >= 300,
    ],
    [
      `POST p50 / p99 at a fixed ${opts.rate}/s for ${opts['rate-seconds']} s`,
      (f) => pair(f.fixed),
      'p99 ≤ 25 ms',
      (f) => summarize(f.fixed.okLatencies).p99 <= 25,
    ],
    [
      'backlog of those purchases drained after the last POST',
      (f) => `${f.drainSeconds.toFixed(1)} s${f.drained ? '' : ' (not all final)'}`,
      '',
    ],
    [`replay p50 / p99 at ${opts.rate}/s`, (f) => pair(f.replay), ''],
    [`GET /health p50 / p99 at ${opts.rate}/s (the HTTP floor)`, (f) => pair(f.health), ''],
    [
      'replay p99 ÷ GET /health p99',
      (f) => `${ratio(f).toFixed(2)}×`,
      '≤ 1.5×',
      (f) => ratio(f) <= 1.5,
    ],
    ['end-to-end outcomes', (f) => JSON.stringify(f.statuses), ''],
    ['other answers (all phases)', (f) => others(f), ''],
    ['machine busy, end to end', (f) => `${(f.cpu.machineBusy * 100).toFixed(0)} %`, ''],
  ];
  const names = r.figures.map((f) => `${f.replicas} replica${f.replicas > 1 ? 's' : ''}`);
  const table = [
    `| measure | ${names.join(' | ')} | target |`,
    `|---|${names.map(() => '---|').join('')}---|`,
    ...rows.map(([name, value, target, met]) => {
      const cells = r.figures.map((f) => value(f) + (met ? ` ${verdict(met(f))}` : ''));
      return `| ${name} | ${cells.join(' | ')} | ${target} |`;
    }),
  ].join('\n');
  const cpu = (u: CpuUsage, per: number) =>
    u.processes
      .filter((p) => p.cpuSeconds * 1000 >= per * 0.5)
      .map((p) => `${p.name} ${((p.cpuSeconds * 1000) / per).toFixed(1)}`)
      .join(', ') +
    `; the whole machine ${((u.machineBusy * u.seconds * r.start.cpus * 1000) / per).toFixed(1)}`;
  const cpuLines = [
    `- CPU ms per bare workflow: ${cpu(r.bare.cpu, r.bare.value.count)}.`,
    ...r.figures.map(
      (f) =>
        `- CPU ms per purchase end to end, ${f.replicas} replica(s): ${cpu(f.cpu, f.accepted)}.`,
    ),
  ];
  const load = (m: Results['start']) => m.load.map((l) => l.toFixed(2)).join(' / ');
  return `${table}

${cpuLines.join('\n')}
- Machine: ${r.start.cpus} × ${r.start.cpuModel}, ${r.start.memoryGiB} GiB, Node ${r.start.node}; load average ${load(r.start)} at the start, ${load(r.end)} at the end.
- Command: \`${command}\`
`;
}

function pair(run: RateRun): string {
  const s = summarize(run.okLatencies);
  return `${ms(s.p50)} / ${ms(s.p99)}`;
}

function ratio(f: ApiFigures): number {
  return summarize(f.replay.okLatencies).p99 / summarize(f.health.okLatencies).p99;
}

function others(f: ApiFigures): string {
  const odd = [f.posts, f.fixed, f.replay, f.health].flatMap((run) =>
    Object.entries(run.byStatus).filter(([code]) => !code.startsWith('2')),
  );
  return odd.map(([code, n]) => `${n}×${code}`).join(', ') || 'none';
}

runBench(
  () => parseFlags(flags, process.argv.slice(2)),
  (opts) => opts['timeout-minutes'],
  main,
);
