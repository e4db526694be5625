import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Deadline } from './support';

/*
 * Fixed arrival rates come from vegeta (github.com/tsenart/vegeta), which sends requests
 * evenly spaced whatever the answers do (an open model). autocannon's rate limit lets
 * every connection send its quota for the second back to back and then wait, so
 * "100 req/s" on 100 connections arrives as one burst of 100 each second.
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
  /** The rate vegeta reached, requests per second. */
  achieved: number;
}

interface EncodedResult {
  code: number;
  latency: number;
  timestamp: string;
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
 * `count` requests at `rate` per second; request i is `target(i)`. Latencies come from
 * each result's own record, in milliseconds.
 */
export async function attackAtRate(
  bin: string,
  target: (i: number) => Target,
  count: number,
  rate: number,
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
    const seconds = Math.ceil(count / rate);
    await run(
      bin,
      [
        'attack',
        '-format=json',
        `-targets=${targets}`,
        `-rate=${rate}/s`,
        `-duration=${seconds}s`,
        '-timeout=30s',
        `-output=${results}`,
      ],
      deadline,
      phase,
    );
    const encoded = await run(bin, ['encode', '-to=json', results], deadline, phase);
    const rows = encoded
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as EncodedResult);
    const byStatus: Record<string, number> = {};
    const latencies: number[] = [];
    const okLatencies: number[] = [];
    let replayed = 0;
    for (const r of rows) {
      byStatus[r.code] = (byStatus[r.code] ?? 0) + 1;
      const ms = r.latency / 1e6;
      latencies.push(ms);
      if (r.code >= 200 && r.code < 300) okLatencies.push(ms);
      const flag = Object.entries(r.headers ?? {}).find(
        ([k]) => k.toLowerCase() === 'idempotent-replayed',
      );
      if (flag?.[1][0] === 'true') replayed++;
    }
    const times = rows.map((r) => Date.parse(r.timestamp)).sort((a, b) => a - b);
    const span = ((times[times.length - 1] ?? 0) - (times[0] ?? 0)) / 1000;
    return {
      latencies,
      okLatencies,
      byStatus,
      replayed,
      errors: byStatus['0'] ?? 0,
      achieved: span > 0 ? (rows.length - 1) / span : NaN,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
