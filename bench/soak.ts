/*
 * A soak against the running stack (a script, not a test):
 *
 *   npm run build && node dist/bench/soak.js --rate 10 [--minutes 10] [--warmup-minutes 1]
 *
 * POSTs purchases at a fixed rate with vegeta for the whole run while sampling each
 * stack process's resident memory, then waits for every accepted purchase to end and
 * reports POST → APPROVED latency (the row's created_at to its last update), the RSS of
 * each process after warm-up and at the end, and what was lost. See docs/benchmarks.md.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import {
  benchProducts,
  log,
  machine,
  parseFlags,
  purchaseTarget,
  requireLoopback,
  runBench,
  stackPids,
  summarize,
} from './support';
import { attack, DEFAULT_VEGETA } from './vegeta';

const flags = z.object({
  rate: z.coerce.number().int().min(1).max(1000),
  minutes: z.coerce.number().min(1).max(120).default(10),
  'warmup-minutes': z.coerce.number().min(0).max(30).default(1),
  api: z.url().default('http://127.0.0.1:3000'),
  vegeta: z.string().min(1).default(DEFAULT_VEGETA),
});

/** Resident set size in MiB of every process the stack started. */
function rssByProcess(): Record<string, number> {
  const rss: Record<string, number> = {};
  for (const [name, pid] of stackPids()) {
    try {
      const kib = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      if (kib) rss[name] = Number(kib) / 1024;
    } catch {
      // Stopped since the listing.
    }
  }
  return rss;
}

runBench(
  () => parseFlags(flags, process.argv.slice(2)),
  (o) => o.minutes + o['warmup-minutes'] + 15,
  async (o, deadline) => {
    const config = loadConfig();
    requireLoopback(config, { api: o.api });
    const prisma = createPrisma(config.DATABASE_URL, 2);
    const run = randomUUID().slice(0, 8);
    const [productId = ''] = await benchProducts(prisma, `soak-${run}`, 1, 'bench/soak.ts');
    const count = Math.round(o.rate * o.minutes * 60);
    log(`soak ${run}: ${count} POSTs at ${o.rate}/s; ${JSON.stringify(machine())}`);

    const samples: { at: number; rss: Record<string, number> }[] = [];
    const t0 = Date.now();
    const sampler = setInterval(
      () => samples.push({ at: Date.now(), rss: rssByProcess() }),
      10_000,
    );
    const attacked = await attack(
      o.vegeta,
      (i) =>
        purchaseTarget(o.api, 'sk_test_local', randomUUID(), `cus_soak_${run}_${i}`, productId),
      count,
      { rate: o.rate },
      deadline,
      'soak',
    );
    clearInterval(sampler);
    const accepted = attacked.byStatus['202'] ?? 0;
    const where = { customerId: { startsWith: `cus_soak_${run}_` } };
    for (;;) {
      const open = await prisma.purchase.count({
        where: { ...where, status: { in: ['RECEIVED', 'PROCESSING'] } },
      });
      if (open === 0) break;
      await deadline.sleep(1000, 'drain');
    }
    const drained = (Date.now() - t0) / 1000 - o.minutes * 60;
    const rows = await prisma.purchase.findMany({
      where,
      select: { status: true, createdAt: true, updatedAt: true },
    });
    const approved = rows.filter((r) => r.status === 'APPROVED');
    const toApproved = summarize(
      approved.map((r) => r.updatedAt.getTime() - r.createdAt.getTime()),
    );
    const warm = samples.find((s) => s.at - t0 >= o['warmup-minutes'] * 60_000) ?? samples[0];
    const last = samples.at(-1);
    const growth = Object.entries(last?.rss ?? {}).map(([name, end]) => {
      const start = warm?.rss[name] ?? end;
      return `${name} ${start.toFixed(0)} → ${end.toFixed(0)} MiB (${(((end - start) / start) * 100).toFixed(1)}%)`;
    });
    const byStatus = Object.fromEntries(
      [...new Set(rows.map((r) => r.status))].map((s) => [
        s,
        rows.filter((r) => r.status === s).length,
      ]),
    );
    console.log(
      [
        `- Command: \`node dist/bench/soak.js --rate ${o.rate} --minutes ${o.minutes} --warmup-minutes ${o['warmup-minutes']}\``,
        `- POSTs: ${count} at ${attacked.achieved.toFixed(1)}/s achieved; answers ${JSON.stringify(attacked.byStatus)}; errors ${attacked.errors}`,
        `- POST p50 / p99 of the 202s: ${summarize(attacked.okLatencies).p50.toFixed(1)} / ${summarize(attacked.okLatencies).p99.toFixed(1)} ms`,
        `- Purchases: ${rows.length} rows for ${accepted} accepted; ${JSON.stringify(byStatus)}; backlog drained ${drained.toFixed(0)} s after the last POST`,
        `- POST → APPROVED p50 / p99 / max: ${toApproved.p50.toFixed(0)} / ${toApproved.p99.toFixed(0)} / ${toApproved.max.toFixed(0)} ms`,
        `- RSS after ${o['warmup-minutes']} min warm-up → at the end: ${growth.join('; ')}`,
      ].join('\n'),
    );
    await prisma.$disconnect();
  },
);
