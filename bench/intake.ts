/*
 * Intake benchmark: what a POST /v1/purchases costs the api, for several builds side by
 * side in one run (a script, not a test):
 *
 *   npm run build && node dist/bench/intake.js --builds after=dist,before=/tmp/before/dist
 *     [--requests 500] [--seconds 10] [--connections 20] [--rounds 2] [--port 3100]
 *
 * Each build's api is started here on its own port, against the running stack, in the
 * gateway-test namespace with a task queue no worker polls: the relay starts workflows
 * that nobody works on. Leftover outbox rows of the run are deleted after each phase, so
 * no other api's relay starts them later. Phases alternate between the builds, `--rounds`
 * times: GET /health (the floor), POSTs on 1 connection (service time), then POSTs on
 * `--connections` for `--seconds`. Every POST has a fresh Idempotency-Key and customer.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { containsCardNumber } from '../api/purchases/card-data';
import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import { runLoad } from './http-load';
import type { LoadOptions, LoadRun } from './http-load';
import { log, machine, parseFlags, requireLoopback, runBench, summarize } from './support';
import type { Deadline } from './support';

const flags = z.object({
  /** name=dist-directory pairs, comma-separated. */
  builds: z.string().min(1).default('after=dist'),
  requests: z.coerce.number().int().min(1).max(100_000).default(500),
  seconds: z.coerce.number().int().min(1).max(600).default(10),
  connections: z.coerce.number().int().min(1).max(1000).default(20),
  rounds: z.coerce.number().int().min(1).max(10).default(2),
  port: z.coerce.number().int().min(1024).max(65000).default(3100),
  'timeout-minutes': z.coerce.number().min(1).max(120).default(15),
});
type Flags = z.infer<typeof flags>;

interface Api {
  name: string;
  url: string;
  child: ChildProcess;
}

/** CPU seconds a process has used, from /proc (Linux clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function startApi(name: string, dist: string, port: number, queue: string): Promise<Api> {
  const url = `http://127.0.0.1:${port}`;
  const out = openSync(`/tmp/bench-intake-${name}.log`, 'w');
  const child = spawn(process.execPath, [join(resolve(dist), 'api', 'main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      API_PORT: String(port),
      TEMPORAL_NAMESPACE: 'gateway-test',
      PURCHASES_TASK_QUEUE: queue,
      PAYMENTS_TASK_QUEUE: `${queue}-payments`,
    },
    stdio: ['ignore', out, out],
  });
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return { name, url, child };
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGTERM');
  throw new Error(`the ${name} api did not answer /health in 20 s`);
}

interface Row {
  build: string;
  phase: string;
  run: LoadRun;
  cpu: number;
}

async function main(opts: Flags, deadline: Deadline): Promise<void> {
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent' });
  requireLoopback(config);
  const runId = `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
  const queue = `bench-intake-${runId}`;
  const prisma = createPrisma(config.DATABASE_URL, 2);
  let productId = randomUUID();
  while (containsCardNumber({ productId })) productId = randomUUID();
  await prisma.product.create({
    data: {
      id: productId,
      sku: `bench-intake-${runId}`,
      name: `Intake benchmark ${runId}`,
      description: 'created by bench/intake.ts',
      priceMinor: 1990,
      currency: 'BRL',
      stock: 1_000_000,
    },
  });
  const builds = opts.builds.split(',').map((b) => b.split('=') as [string, string]);
  const apis: Api[] = [];
  const rows: Row[] = [];
  const start = machine();
  try {
    for (const [i, [name, dist]] of builds.entries()) {
      apis.push(await startApi(name, dist, opts.port + i, queue));
    }
    const purchase = (i: number) => ({
      headers: { 'idempotency-key': `${runId}-${i}-${randomUUID()}` },
      body: JSON.stringify({
        customerId: `cus_${runId}_${i}`,
        items: [{ productId, quantity: 1 }],
        currency: 'BRL',
        paymentMethod: { type: 'card_token', token: 'tok_visa' },
      }),
    });
    const phases: [string, (api: Api) => LoadOptions][] = [
      [
        'GET /health, 1 connection',
        (api) => ({
          url: `${api.url}/health`,
          method: 'GET',
          connections: 1,
          amount: opts.requests,
          headers: {},
          body: '',
        }),
      ],
      [
        'POST, 1 connection',
        (api) => ({
          url: `${api.url}/v1/purchases`,
          connections: 1,
          amount: opts.requests,
          headers: { authorization: 'Bearer sk_test_local' },
          body: purchase,
        }),
      ],
      [
        `POST, ${opts.connections} connections`,
        (api) => ({
          url: `${api.url}/v1/purchases`,
          connections: opts.connections,
          duration: opts.seconds,
          headers: { authorization: 'Bearer sk_test_local' },
          body: purchase,
        }),
      ],
    ];
    // Warm-up: JIT, pools, the api-key cache.
    for (const api of apis) await runLoad({ ...phases[1]![1](api), amount: 50 }, deadline, 'warm');
    for (let round = 1; round <= opts.rounds; round++) {
      for (const [phase, options] of phases) {
        for (const api of apis) {
          log(`round ${round}: ${api.name}: ${phase}`);
          const before = cpuSeconds(api.child.pid!);
          const run = await runLoad(options(api), deadline, phase);
          rows.push({ build: api.name, phase, run, cpu: cpuSeconds(api.child.pid!) - before });
          await prisma.workflowStart.deleteMany({ where: { taskQueue: queue } });
        }
      }
    }
  } finally {
    for (const api of apis) api.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 2000));
    await prisma.workflowStart.deleteMany({ where: { taskQueue: queue } });
    await prisma.$disconnect();
  }

  const end = machine();
  const f = (v: number) => v.toFixed(1);
  console.log(`run ${runId}, task queue ${queue}, product ${productId}`);
  console.log(
    `machine: ${start.cpus} × ${start.cpuModel}, ${start.memoryGiB} GiB, node ${start.node}; load ${start.load.map(f).join(' / ')} at the start, ${end.load.map(f).join(' / ')} at the end`,
  );
  console.log('');
  console.log(
    '| build | phase | 2xx | other | p50 | p99 | 2xx/s | api CPU per request |\n| --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const { build, phase, run, cpu } of rows) {
    const ok = run.okLatencies.length;
    const other = Object.entries(run.byStatus)
      .filter(([code]) => !code.startsWith('2'))
      .map(([code, n]) => `${n} × ${code}`)
      .concat(run.errors ? [`${run.errors} errors`] : [])
      .join(', ');
    const { p50, p99 } = summarize(run.okLatencies);
    console.log(
      `| ${build} | ${phase} | ${ok} | ${other || '0'} | ${p50.toFixed(2)} ms | ${p99.toFixed(2)} ms | ${f(ok / run.seconds)} | ${((cpu * 1000) / run.latencies.length).toFixed(2)} ms |`,
    );
  }
}

runBench(
  () => parseFlags(flags, process.argv.slice(2)),
  (opts) => opts['timeout-minutes'],
  main,
);
