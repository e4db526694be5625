/*
 * Product search latency against the running stack (a script, not a test):
 *
 *   npm run build && node dist/bench/search-latency.js [--products 10000] [--connections 10]
 *     [--seconds 20] [--warmup-seconds 5] [--timeout-minutes 10]
 *
 * First makes sure the products index holds at least --products documents: missing rows
 * are inserted into MySQL (createMany, skus `bench-search-p-N`, kept for later runs) and
 * reach the index through CDC like any other write. Then autocannon drives
 * GET /v1/products/search on produto with a fixed set of queries at a fixed concurrency.
 * A produto that predates the search route (404) is left alone: the script then runs the
 * built dist/produto/main.js as a child process on a free loopback port and stops it after.
 * See docs/benchmarks.md.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Client } from '@opensearch-project/opensearch';
import autocannon from 'autocannon';
import { z } from 'zod';
import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import type { PrismaClient } from '../common/db';
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
  stackPids,
} from './support';
import type { CpuUsage, Deadline } from './support';

const SKU_PREFIX = 'bench-search-p-';

const flags = z.object({
  products: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  connections: z.coerce.number().int().min(1).max(1000).default(10),
  seconds: z.coerce.number().int().min(1).max(600).default(20),
  'warmup-seconds': z.coerce.number().int().min(0).max(60).default(5),
  'timeout-minutes': z.coerce.number().min(1).max(120).default(10),
  produto: z.url().default('http://127.0.0.1:3001'),
});
type Flags = z.infer<typeof flags>;

/** Each connection cycles through these in order: one word, two words, accents, filters, no text. */
const QUERIES = [
  '/v1/products/search?q=caf%C3%A9',
  '/v1/products/search?q=pao%20integral',
  '/v1/products/search?q=queijos%20mineiros',
  '/v1/products/search?q=chocolate&maxPrice=5000&inStock=true',
  '/v1/products/search?q=doce%20de%20leite%20artesanal',
  '/v1/products/search?q=a%C3%A7%C3%BAcar&currency=BRL&limit=50',
  '/v1/products/search?inStock=true&minPrice=1000&maxPrice=9000',
];

const ITEMS = [
  'Café',
  'Pão',
  'Queijo',
  'Chocolate',
  'Arroz',
  'Feijão',
  'Açúcar',
  'Leite',
  'Manteiga',
  'Biscoito',
  'Azeite',
  'Mel',
  'Farinha',
  'Goiabada',
  'Castanha',
  'Erva-mate',
  'Doce de leite',
  'Guaraná',
  'Tapioca',
  'Cachaça',
];
const KINDS = ['orgânico', 'integral', 'especial', 'tradicional', 'artesanal', 'premium', 'light'];
const ORIGINS = ['mineiro', 'baiano', 'gaúcho', 'paulista', 'do cerrado', 'da serra', 'nordestino'];

/** Deterministic, varied rows: 20 × 7 × 7 name shapes, prices 1.00–200.00, some out of stock. */
function benchRow(n: number) {
  const item = ITEMS[n % ITEMS.length]!;
  const kind = KINDS[Math.floor(n / ITEMS.length) % KINDS.length]!;
  const origin = ORIGINS[Math.floor(n / (ITEMS.length * KINDS.length)) % ORIGINS.length]!;
  return {
    sku: `${SKU_PREFIX}${String(n).padStart(7, '0')}`,
    name: `${item} ${kind} ${origin}`,
    description: `${item} ${kind}, produzido no interior ${origin}. Lote ${n}, embalagem de ${(n % 9) + 1} unidades.`,
    priceMinor: 100 + ((n * 7919) % 19_901),
    currency: n % 10 === 9 ? 'USD' : 'BRL',
    stock: n % 8 === 0 ? 0 : (n % 97) + 1,
  };
}

async function main(opts: Flags, deadline: Deadline): Promise<void> {
  const command = ['node dist/bench/search-latency.js', ...process.argv.slice(2)].join(' ');
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent' });
  requireLoopback(config, { '--produto': opts.produto });
  const startMachine = machine();
  log(`bench: ${command}`);

  const prisma = createPrisma(config.DATABASE_URL, 4);
  const client = createOpenSearchClient(config.OPENSEARCH_URL);
  let indexer: IndexerHandle | undefined;
  let produto: Produto | undefined;
  try {
    produto = await ensureProduto(opts.produto, deadline);
    log(`produto: ${produto.mode}`);
    await checkPipeline(config, client, deadline);
    indexer = await ensureIndexer(config, deadline);
    log(`indexer: ${indexer.mode}`);

    const inserted = await fillCatalog(prisma, opts.products, deadline);
    const indexed = await waitIndexed(client, opts.products, deadline);
    log(`index holds ${indexed} products (${inserted} inserted by this run)`);

    const hits: string[] = [];
    for (const path of QUERIES) {
      const res = await deadline.race(fetch(new URL(path, produto.url)), 'trying each query');
      const body = (await res.json()) as { data?: unknown[]; nextCursor?: string | null };
      if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
      const n = body.data?.length ?? 0;
      hits.push(
        `\`${decodeURIComponent(path.replace('/v1/products/search', ''))}\` → ${n}${body.nextCursor ? '+' : ''}`,
      );
    }

    if (opts['warmup-seconds'] > 0) {
      log(`warm-up: ${opts['warmup-seconds']} s...`);
      await load(produto.url, opts, opts['warmup-seconds'], deadline);
    }
    log(`measuring: ${opts.connections} connections for ${opts.seconds} s...`);
    // produto is not in the stack's pid files when the benchmark started it.
    const pids = stackPids(
      new Map(produto.pid === undefined ? [] : [['produto (benchmark)', String(produto.pid)]]),
    );
    const before = cpuSnapshot(pids);
    const run = await load(produto.url, opts, opts.seconds, deadline);
    const cpu = cpuBetween(before, cpuSnapshot(pids));
    process.stdout.write(
      report({
        command,
        opts,
        run,
        cpu,
        indexed,
        inserted,
        hits,
        indexerMode: indexer.mode,
        produtoMode: produto.mode,
        machines: machineTable(startMachine, machine()),
      }),
    );
  } finally {
    await indexer?.stop().catch((err: unknown) => log(`stopping the indexer: ${String(err)}`));
    await produto?.stop().catch((err: unknown) => log(`stopping produto: ${String(err)}`));
    await client.close().catch(() => undefined);
    await prisma.$disconnect();
  }
}

interface Produto {
  url: string;
  mode: string;
  /** The child's pid when this script started produto (its CPU is reported apart). */
  pid?: number;
  stop(): Promise<void>;
}

/** The running produto if it serves search; otherwise the built one, in a child process. */
async function ensureProduto(url: string, deadline: Deadline): Promise<Produto> {
  const probe = await deadline.race(
    fetch(new URL('/v1/products/search?limit=1', url)),
    'probing produto',
  );
  if (probe.ok)
    return { url, mode: `the running service at ${url}`, stop: () => Promise.resolve() };
  if (probe.status !== 404)
    throw new Error(`produto at ${url} answered ${probe.status} to a search`);
  const port = await freePort();
  const own = `http://127.0.0.1:${port}`;
  log(
    `produto at ${url} has no search route (started before it existed); starting dist/produto on ${own}`,
  );
  const child: ChildProcess = spawn(
    process.execPath,
    [join(__dirname, '..', 'produto', 'main.js')],
    {
      env: {
        ...process.env,
        PRODUTO_PORT: String(port),
        HTTP_HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`produto exited with ${child.exitCode}`);
      const ok = await fetch(new URL('/health', own)).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      await deadline.sleep(200, 'starting produto');
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: own,
    mode: `dist/produto/main.js started by the benchmark on ${own} (pid ${child.pid}), because the stack's produto at ${url} predates the search route`,
    pid: child.pid,
    stop,
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Inserts bench rows until MySQL holds `target` products; returns how many it added. */
async function fillCatalog(
  prisma: PrismaClient,
  target: number,
  deadline: Deadline,
): Promise<number> {
  let inserted = 0;
  // Numbering resumes after the existing bench rows; skipDuplicates covers a gap in it.
  let n = await prisma.product.count({ where: { sku: { startsWith: SKU_PREFIX } } });
  for (;;) {
    const missing = target - (await prisma.product.count());
    if (missing <= 0) return inserted;
    log(`inserting ${missing} products...`);
    for (let left = missing; left > 0;) {
      const size = Math.min(1000, left);
      const data = Array.from({ length: size }, (_, k) => benchRow(n + k));
      const { count } = await deadline.race(
        prisma.product.createMany({ data, skipDuplicates: true }),
        'inserting products',
      );
      n += size;
      left -= size;
      inserted += count;
    }
  }
}

/** Waits until the products alias counts `target` documents; logs progress. */
async function waitIndexed(client: Client, target: number, deadline: Deadline): Promise<number> {
  let lastLog = Date.now();
  for (;;) {
    const res = await deadline.race(
      client.count({ index: PRODUCTS_ALIAS }),
      'waiting for the index to hold every product',
    );
    const count = res.body.count;
    if (count >= target) return count;
    if (Date.now() - lastLog > 10_000) {
      log(`  index: ${count}/${target}`);
      lastLog = Date.now();
    }
    await deadline.sleep(500, 'waiting for the index to hold every product');
  }
}

interface LoadRun {
  latencies: number[];
  byStatus: Record<string, number>;
  errors: number;
  timeouts: number;
  seconds: number;
  autocannon: { p50: number; p99: number };
}

/**
 * One autocannon run. Latencies come from each 'response' event (sub-millisecond floats);
 * autocannon's own histogram keeps whole milliseconds and is reported beside them.
 */
function load(url: string, opts: Flags, seconds: number, deadline: Deadline): Promise<LoadRun> {
  const phase = `autocannon for ${seconds} s`;
  deadline.check(phase);
  const latencies: number[] = [];
  let first = 0;
  let last = 0;
  return new Promise<LoadRun>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: opts.connections,
        duration: seconds,
        timeout: 10,
        requests: QUERIES.map((path) => ({ method: 'GET', path })),
      },
      (err, result) => {
        deadline.signal.removeEventListener('abort', stop);
        if (err) return reject(err);
        if (deadline.signal.aborted) return reject(deadline.error(phase));
        const byStatus: Record<string, number> = {};
        for (const [code, { count }] of Object.entries(result.statusCodeStats)) {
          byStatus[code] = count;
        }
        resolve({
          latencies,
          byStatus,
          errors: result.errors,
          timeouts: result.timeouts,
          seconds: (last - first) / 1000,
          autocannon: { p50: result.latency.p50, p99: result.latency.p99 },
        });
      },
    );
    const stop = () => instance.stop();
    deadline.signal.addEventListener('abort', stop, { once: true });
    first = performance.now();
    instance.on('response', (_client: unknown, _status: number, _bytes: number, took: number) => {
      latencies.push(took);
      last = performance.now();
    });
  });
}

interface ReportInput {
  command: string;
  opts: Flags;
  run: LoadRun;
  cpu: CpuUsage;
  indexed: number;
  inserted: number;
  hits: string[];
  indexerMode: string;
  produtoMode: string;
  machines: string;
}

function report(r: ReportInput): string {
  const { run } = r;
  const ok = Object.entries(run.byStatus)
    .filter(([code]) => code.startsWith('2'))
    .reduce((n, [, c]) => n + c, 0);
  const other =
    Object.entries(run.byStatus)
      .filter(([code]) => !code.startsWith('2'))
      .map(([code, n]) => `${n}×${code}`)
      .concat(run.errors > 0 ? [`${run.errors} errors (${run.timeouts} timeouts)`] : [])
      .join(', ') || 'none';
  const cpu =
    r.cpu.processes
      .slice(0, 8)
      .map((p) => `${p.name} ${p.cores.toFixed(2)}`)
      .join(', ') +
    `, everything else ${r.cpu.otherCores.toFixed(2)} (machine ${(r.cpu.machineBusy * 100).toFixed(0)}% busy)`;
  const q = (p: number) => ms(percentile(run.latencies, p));
  return `
### Search latency: GET /v1/products/search over ${r.indexed.toLocaleString('en')} indexed products

${r.opts.connections} connections, ${r.opts.seconds} s (after ${r.opts['warmup-seconds']} s of warm-up), each connection cycling through ${QUERIES.length} queries.

| requests | req/s | p50 | p90 | p99 | max | other than 2xx |
| --- | --- | --- | --- | --- | --- | --- |
| ${run.latencies.length} | ${(run.latencies.length / run.seconds).toFixed(0)} | ${q(0.5)} | ${q(0.9)} | ${q(0.99)} | ${q(1)} | ${other} |

- 2xx responses: ${ok}; autocannon's own histogram (whole ms): p50 ${run.autocannon.p50} ms, p99 ${run.autocannon.p99} ms.
- Queries and the hits on their first page (\`+\`: more pages): ${r.hits.join('; ')}.
- Products: ${r.inserted} inserted by this run (skus \`${SKU_PREFIX}*\`), through CDC into the index. Indexer: ${r.indexerMode}.
- Produto: ${r.produtoMode}.
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
