import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Deadline } from './support';

/*
 * A second replica of each stateless piece, started by the benchmark next to the stack's
 * own: an api on its own port and one more of each worker, run from dist with the
 * stack's environment and the same `nice` as the stack gives its background pieces.
 */

const ROOT = join(__dirname, '..', '..');
const LOG_DIR = join(ROOT, '.stack', 'logs');

const SECOND = [
  { name: 'api-2', entry: 'dist/api/main.js', nice: 0 },
  { name: 'process-purchases-2', entry: 'dist/workers/process-purchases.js', nice: 10 },
  { name: 'payment-processing-2', entry: 'dist/workers/payment-processing.js', nice: 10 },
  { name: 'search-indexer-2', entry: 'dist/workers/search-indexer.js', nice: 10 },
];

export interface Replicas {
  apiUrl: string;
  /** Name to pid, for the CPU figures. */
  pids: Map<string, string>;
  stop(): Promise<void>;
}

function logged(file: string, text: string): boolean {
  try {
    return readFileSync(file, 'utf8').includes(text);
  } catch {
    return false;
  }
}

export async function startSecondReplicas(apiPort: number, deadline: Deadline): Promise<Replicas> {
  const children: { name: string; child: ChildProcess; log: string }[] = [];
  for (const { name, entry, nice } of SECOND) {
    const log = join(LOG_DIR, `bench-${name}.log`);
    const out = openSync(log, 'w');
    const child = spawn('nice', ['-n', String(nice), process.execPath, entry], {
      cwd: ROOT,
      env: { ...process.env, API_PORT: String(apiPort), LOG_LEVEL: 'info' },
      stdio: ['ignore', out, out],
    });
    children.push({ name, child, log });
  }
  const stop = async () => {
    await Promise.all(
      children.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
  };
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  try {
    // Ready: the api answers /health, each Temporal worker has logged that it polls, and
    // the indexer has joined its consumer group.
    for (;;) {
      const dead = children.find((c) => c.child.exitCode !== null);
      if (dead) throw new Error(`${dead.name} exited ${dead.child.exitCode}; see ${dead.log}`);
      const api = await fetch(`${apiUrl}/health`).then(
        (r) => r.ok,
        () => false,
      );
      const workers = children.slice(1, 3).every((c) => logged(c.log, '"msg":"worker started"'));
      const indexer = logged(children[3]!.log, '"msg":"indexer started"');
      if (api && workers && indexer) break;
      await deadline.sleep(200, 'starting the second replicas');
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const pids = new Map(children.map(({ name, child }) => [name, String(child.pid)]));
  return { apiUrl, pids, stop };
}
