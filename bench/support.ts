import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { containsCardNumber } from '../api/purchases/card-data';
import type { Config } from '../common/config';
import type { PrismaClient } from '../common/db';
import type { Target } from './vegeta';

export class DeadlineExceeded extends Error {}

/** One time budget for the whole run; every wait races it so the script always ends. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Throws when the budget is spent, naming what was running. */
  check(phase: string): void;
  race<T>(promise: Promise<T>, phase: string): Promise<T>;
  sleep(ms: number, phase: string): Promise<void>;
  /** Milliseconds left. */
  left(): number;
  /** Ends the run early (an interrupt), as if the budget had run out. */
  stop(reason: string): void;
  /** The error to throw for a phase cut short. */
  error(phase: string): DeadlineExceeded;
}

export function createDeadline(ms: number): Deadline {
  const controller = new AbortController();
  const endsAt = Date.now() + ms;
  let why = `gave up: the ${Math.round(ms / 1000)} s time budget ran out`;
  const timer = setTimeout(() => controller.abort(), ms);
  timer.unref();
  const exceeded = (phase: string) => new DeadlineExceeded(`${why}, during: ${phase}`);
  const race = <T>(promise: Promise<T>, phase: string): Promise<T> => {
    if (controller.signal.aborted) return Promise.reject(exceeded(phase));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(exceeded(phase));
      controller.signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => {
          controller.signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          controller.signal.removeEventListener('abort', onAbort);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  };
  return {
    signal: controller.signal,
    check(phase) {
      if (controller.signal.aborted) throw exceeded(phase);
    },
    race,
    sleep: (wait, phase) => race(new Promise((r) => setTimeout(r, wait).unref()), phase),
    left: () => Math.max(0, endsAt - Date.now()),
    stop(reason) {
      why = `stopped (${reason})`;
      controller.abort();
    },
    error: exceeded,
  };
}

/** Runs fn(0..count-1) with at most `concurrency` calls in flight. */
export async function runPool(
  count: number,
  concurrency: number,
  fn: (i: number) => Promise<void>,
  deadline: Deadline,
  phase: string,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      deadline.check(phase);
      await fn(next++);
    }
  };
  await deadline.race(
    Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane)),
    phase,
  );
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles over raw samples (milliseconds). */
export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? NaN };
}

export interface Throughput {
  count: number;
  /** From t0 to the last completion. */
  seconds: number;
  perSecond: number;
}

/** Completions per second from t0 (epoch ms) to the last completion. */
export function throughput(t0: number, completions: number[]): Throughput {
  // reduce, not Math.max(...): a spread of 100,000 arguments can overflow the stack.
  const last = completions.reduce((max, c) => (c > max ? c : max), t0);
  const seconds = (last - t0) / 1000;
  return { count: completions.length, seconds, perSecond: completions.length / seconds };
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  load: [number, number, number];
}

export function machine(): Machine {
  const [one = 0, five = 0, fifteen = 0] = loadavg();
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    load: [one, five, fifteen],
  };
}

/**
 * CPU seconds spent by each stack process (from the stack's pid files) and the whole
 * machine over a phase: the cheapest profile there is, and enough to see who is busy.
 */
export interface CpuSnapshot {
  at: number;
  byProcess: Map<string, number>;
  /** jiffies from /proc/stat: busy, idle, steal. */
  machine: { busy: number; idle: number; steal: number };
}

const CLOCK_TICKS = 100;

export const RUN_DIR = join(__dirname, '..', '..', '.stack', 'run');

/** Name to pid of every process the stack started (its pid files), and of `extra`. */
export function stackPids(extra: ReadonlyMap<string, string> = new Map()): Map<string, string> {
  const pids = new Map<string, string>();
  let files: string[] = [];
  try {
    files = readdirSync(RUN_DIR).filter((f) => f.endsWith('.pid'));
  } catch {
    // No pid files (a stack started some other way).
  }
  for (const file of files.sort()) {
    try {
      const pid = readFileSync(join(RUN_DIR, file), 'utf8').trim();
      if (/^\d+$/.test(pid)) pids.set(file.replace(/\.pid$/, ''), pid);
    } catch {
      // Stopped between the listing and the read.
    }
  }
  for (const [name, pid] of extra) pids.set(name, pid);
  // One process under two names (mariadb.pid and mariadbd.pid) counts once.
  const seen = new Set<string>();
  return new Map([...pids].filter(([, pid]) => !seen.has(pid) && seen.add(pid)));
}

export function cpuSnapshot(pids: ReadonlyMap<string, string>): CpuSnapshot {
  const byProcess = new Map<string, number>();
  for (const [name, pid] of pids) {
    const seconds = processCpuSeconds(pid);
    if (seconds !== undefined) byProcess.set(name, seconds);
  }
  const self = process.cpuUsage();
  byProcess.set('bench (this process)', (self.user + self.system) / 1e6);
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] =
    fields.slice(1).map(Number);
  return {
    at: Date.now(),
    byProcess,
    machine: { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal },
  };
}

/** CPU seconds a process has used so far (utime + stime), or undefined once it is gone. */
export function processCpuSeconds(pid: string | number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

export interface CpuUsage {
  seconds: number;
  /** Share of one core per process over the phase, busiest first, and CPU seconds. */
  processes: { name: string; cores: number; cpuSeconds: number }[];
  machineBusy: number;
  /** Cores used by everything not listed (other people's work on a shared machine). */
  otherCores: number;
}

export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuUsage {
  const seconds = (b.at - a.at) / 1000;
  const processes = [...b.byProcess]
    .map(([name, end]) => {
      const cpuSeconds = end - (a.byProcess.get(name) ?? end);
      return { name, cores: cpuSeconds / seconds, cpuSeconds };
    })
    .filter((p) => p.cores > 0.005)
    .sort((x, y) => y.cores - x.cores);
  const busy = b.machine.busy - a.machine.busy;
  const idle = b.machine.idle - a.machine.idle;
  const steal = b.machine.steal - a.machine.steal;
  const total = busy + idle + steal || 1;
  const listed = processes.reduce((sum, p) => sum + p.cores, 0);
  return {
    seconds,
    processes,
    machineBusy: busy / total,
    otherCores: Math.max(0, (busy / total) * cpus().length - listed),
  };
}

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Every flag is `--name value`; the zod object gives the defaults and the bounds. */
export function parseFlags<S extends z.ZodObject>(schema: S, argv: string[]): z.infer<S> {
  const names = Object.keys(schema.shape);
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
  });
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`);
    throw new Error(`bad flags: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Every address the benchmark talks to must be this machine. */
export function requireLoopback(config: Config, extra: Record<string, string> = {}): void {
  const hosts: [string, string][] = [
    ['DATABASE_URL', new URL(config.DATABASE_URL).hostname],
    ['OPENSEARCH_URL', new URL(config.OPENSEARCH_URL).hostname],
    ['KAFKA_CONNECT_URL', new URL(config.KAFKA_CONNECT_URL).hostname],
    ['TEMPORAL_ADDRESS', config.TEMPORAL_ADDRESS.replace(/:\d+$/, '')],
    ...config.KAFKA_BROKERS.map((b): [string, string] => ['KAFKA_BROKERS', b.replace(/:\d+$/, '')]),
    ...Object.entries(extra).map(([what, url]): [string, string] => [what, new URL(url).hostname]),
  ];
  for (const [what, host] of hosts) {
    if (!LOOPBACK.has(host)) {
      throw new Error(`${what} points at ${host}; the benchmark only talks to 127.0.0.1`);
    }
  }
}

/**
 * Parses the flags, then runs a benchmark's main under a time budget with SIGINT handling
 * and a clean exit: 0 when it finished, 1 when it failed or gave up, 2 when cleanup hung.
 */
export function runBench<T>(
  parse: () => T,
  budgetMinutes: (opts: T) => number,
  main: (opts: T, deadline: Deadline) => Promise<void>,
): void {
  let opts: T;
  try {
    opts = parse();
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
  const budgetMs = budgetMinutes(opts) * 60_000;
  const deadline = createDeadline(budgetMs);
  process.once('SIGINT', () => {
    log('interrupted: stopping the current phase and cleaning up');
    deadline.stop('SIGINT');
  });
  setTimeout(() => {
    log('cleanup did not finish within 60 s of the time budget; exiting');
    process.exit(2);
  }, budgetMs + 60_000).unref();
  main(opts, deadline).then(
    () => process.exit(0),
    (err: unknown) => {
      if (err instanceof DeadlineExceeded) log(err.message);
      else log(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}

/**
 * Products with a stock of ten million, BRL 19.90 each. An id the api's raw-card check
 * would refuse (a UUID whose digits happen to pass Luhn) is retired and replaced.
 */
export async function benchProducts(
  prisma: PrismaClient,
  skuPrefix: string,
  count: number,
  source: string,
): Promise<string[]> {
  const ids: string[] = [];
  for (let attempt = 0; ids.length < count; attempt++) {
    const product = await prisma.product.create({
      data: {
        sku: `${skuPrefix}-${attempt}`,
        name: `Benchmark product ${skuPrefix}`,
        description: `created by ${source}`,
        priceMinor: 1990,
        currency: 'BRL',
        stock: 10_000_000,
      },
    });
    if (!containsCardNumber({ productId: product.id })) ids.push(product.id);
    else await prisma.product.update({ where: { id: product.id }, data: { active: false } });
  }
  return ids;
}

/** POST /v1/purchases of one unit of the product for the customer, under `key`. */
export function purchaseTarget(
  api: string,
  apiKey: string,
  key: string,
  customerId: string,
  productId: string,
): Target {
  return {
    method: 'POST',
    url: `${api}/v1/purchases`,
    headers: {
      authorization: `Bearer ${apiKey}`,
      'content-type': 'application/json',
      'idempotency-key': key,
    },
    body: JSON.stringify({
      customerId,
      items: [{ productId, quantity: 1 }],
      currency: 'BRL',
      paymentMethod: { type: 'card_token', token: 'tok_visa' },
    }),
  };
}
