import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Deadline } from './support';

/*
 * HTTP load comes from vegeta (github.com/tsenart/vegeta). At a fixed rate it sends
 * requests evenly spaced whatever the answers do; autocannon's rate limit lets each
 * connection send its quota for the second back to back and then wait, so "100 req/s"
 * on 100 connections arrived as one burst of 100 each second.
 */

export const VEGETA_INSTALL =
  'GOBIN=~/.cache/gateway-payment/bin go install github.com/tsenart/vegeta/v12@v12.13.0';
export const DEFAULT_VEGETA = join(homedir(), '.cache', 'gateway-payment', 'bin', 'vegeta');

export interface Target {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface RateRun {
  /** Milliseconds per response, every status. */
  latencies: number[];
  /** The same, 2xx only. */
  okLatencies: number[];
  byStatus: Record<string, number>;
  /** Responses that carried `Idempotent-Replayed: true`. */
  replayed: number;
  /** Requests vegeta could not send or got no answer to (status 0). */
  errors: number;
  /** First request sent to last answer received. */
  seconds: number;
  /** Requests per second over those seconds. */
  achieved: number;
}

interface EncodedResult {
  code: number;
  latency: number;
  timestamp: string;
  error: string;
  headers?: Record<string, string[]>;
}

function run(bin: string, args: string[], deadline: Deadline, phase: string): Promise<string> {
  return deadline.race(
    new Promise<string>((resolve, reject) => {
      const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      const stop = () => child.kill('SIGINT');
      deadline.signal.addEventListener('abort', stop, { once: true });
      child.on('error', reject);
      child.on('close', (code) => {
        deadline.signal.removeEventListener('abort', stop);
        if (code === 0) resolve(Buffer.concat(out).toString());
        else
          reject(new Error(`vegeta ${args[0]} exited ${code}: ${Buffer.concat(err).toString()}`));
      });
    }),
    phase,
  );
}

/**
 * An open model, `rate` requests per second whatever the answers do, or a closed one:
 * `workers` each sending its next request when the last one is answered.
 */
export type Pace = { rate: number } | { workers: number };

/**
 * `count` requests, request i being `target(i)`, each sent once (vegeta reads the
 * targets lazily and stops at their end). Latencies come from each result's own record.
 */
export async function attack(
  bin: string,
  target: (i: number) => Target,
  count: number,
  pace: Pace,
  deadline: Deadline,
  phase: string,
): Promise<RateRun> {
  if (!existsSync(bin))
    throw new Error(`vegeta not found at ${bin}; build it with: ${VEGETA_INSTALL}`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-vegeta-'));
  try {
    const targets = join(dir, 'targets.jsonl');
    const results = join(dir, 'results.bin');
    const lines = Array.from({ length: count }, (_, i) => {
      const t = target(i);
      const header = Object.fromEntries(Object.entries(t.headers).map(([k, v]) => [k, [v]]));
      return JSON.stringify({
        method: t.method,
        url: t.url,
        header,
        ...(t.body !== undefined && { body: Buffer.from(t.body).toString('base64') }),
      });
    });
    writeFileSync(targets, lines.join('\n') + '\n');
    const paced =
      'rate' in pace
        ? [`-rate=${pace.rate}/s`]
        : ['-rate=0', `-workers=${pace.workers}`, `-max-workers=${pace.workers}`];
    await run(
      bin,
      [
        'attack',
        '-format=json',
        '-lazy',
        `-targets=${targets}`,
        '-duration=0',
        '-timeout=30s',
      ].concat(paced, `-output=${results}`),
      deadline,
      phase,
    );
    const encoded = await run(bin, ['encode', '-to=json', results], deadline, phase);
    const rows = encoded
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as EncodedResult)
      // Each worker that finds the targets used up records that as a result of its own.
      .filter((r) => r.error !== 'no targets to attack');
    const byStatus: Record<string, number> = {};
    const latencies: number[] = [];
    const okLatencies: number[] = [];
    let replayed = 0;
    let first = Infinity;
    let last = -Infinity;
    for (const r of rows) {
      byStatus[r.code] = (byStatus[r.code] ?? 0) + 1;
      const ms = r.latency / 1e6;
      latencies.push(ms);
      if (r.code >= 200 && r.code < 300) okLatencies.push(ms);
      const flag = Object.entries(r.headers ?? {}).find(
        ([k]) => k.toLowerCase() === 'idempotent-replayed',
      );
      if (flag?.[1][0] === 'true') replayed++;
      const sent = Date.parse(r.timestamp);
      first = Math.min(first, sent);
      last = Math.max(last, sent + ms);
    }
    const seconds = (last - first) / 1000;
    return {
      latencies,
      okLatencies,
      byStatus,
      replayed,
      errors: byStatus['0'] ?? 0,
      seconds,
      achieved: rows.length / seconds,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
