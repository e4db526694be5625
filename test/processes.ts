import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { TEST_NAMESPACE } from './config';

/*
 * The compiled services (`npm run build` first; ./stack/stack.sh test does it) as OS
 * processes of their own, in the test namespace, logging JSON at info to stdout.
 */
export function startService(
  entry: string,
  env: Record<string, string>,
): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [entry], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      TEMPORAL_NAMESPACE: TEST_NAMESPACE,
      ...env,
    },
  });
  // Read to the end even when nobody waits for a line, so a full pipe never blocks the child.
  createInterface({ input: child.stdout }).on('line', (line) => child.emit('log', line));
  child.stderr.resume();
  return child;
}

/** Resolves with the first JSON log line whose msg matches. */
export function logLine(
  child: ChildProcessWithoutNullStreams,
  msg: string,
  timeoutMs = 30000,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const seen: string[] = [];
    const onLine = (line: string): void => {
      seen.push(line);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return; // not a log line
      }
      if (parsed.msg !== msg) return;
      clearTimeout(timer);
      child.off('log', onLine);
      resolve(parsed);
    };
    const timer = setTimeout(() => {
      child.off('log', onLine);
      reject(new Error(`no "${msg}" log line in ${timeoutMs} ms: ${seen.join('\n')}`));
    }, timeoutMs);
    child.on('log', onLine);
  });
}

export function exited(
  child: ChildProcessWithoutNullStreams,
): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) =>
    child.once('exit', (code) => resolve({ code, ms: Date.now() - started })),
  );
}
