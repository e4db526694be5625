import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const LIB = resolve(__dirname, '../../stack/lib.sh');

let dir: string;
const children: ChildProcess[] = [];
/** Pids of daemons start_daemon started: they are in sessions of their own. */
const daemons: number[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'stack-lib-'));
  mkdirSync(join(dir, 'run'));
});

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const pid of daemons.splice(0)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `is_running NAME` from stack/lib.sh with the stack's run dir in a temp dir. */
function isRunning(name: string): boolean {
  const result = spawnSync('bash', ['-c', 'source "$1" && is_running "$2"', '_', LIB, name], {
    // STACK_DIR and GATEWAY_CACHE keep lib.sh away from the real .stack/ and cache.
    env: { PATH: process.env.PATH, HOME: dir, STACK_DIR: dir, GATEWAY_CACHE: join(dir, 'cache') },
    encoding: 'utf8',
  });
  if (result.status !== 0 && result.status !== 1) throw new Error(result.stderr);
  return result.status === 0;
}

const recordPid = (name: string, pid: number | string): void =>
  writeFileSync(join(dir, 'run', `${name}.pid`), `${pid}\n`);

/** The state letter of /proc/<pid>/stat, read after the last ')' that closes comm. */
function stateOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).charAt(0);
}

/** Starts `command` under bash and resolves with the first line it prints. */
function startAndReadLine(command: string, args: string[] = []): Promise<string> {
  const child = spawn('bash', ['-c', command, '_', ...args], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  children.push(child);
  return new Promise((resolvePid, reject) => {
    child.stdout.once('data', (chunk: Buffer) => resolvePid(chunk.toString().trim()));
    child.once('error', reject);
  });
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('when the recorded process is a zombie its parent has not reaped, then is_running is false', async () => {
  // The background sleep's parent execs a sleep that never waits, so it stays a zombie.
  const zombie = Number(await startAndReadLine('sleep 0.1 & echo $!; exec sleep 30'));
  await until(() => stateOf(zombie) === 'Z');
  recordPid('ghost', zombie);

  expect(isRunning('ghost')).toBe(false);
});

test('when the recorded process is alive, then is_running is true', async () => {
  const pid = await startAndReadLine('echo $$; exec sleep 30');
  recordPid('alive', pid);

  expect(isRunning('alive')).toBe(true);
});

test('when a live process has spaces and parentheses in its name, then is_running is true', async () => {
  // /proc/<pid>/stat then reads "<pid> (x) Z (y) S ...": only the last ')' ends the name.
  const program = join(dir, 'x) Z (y');
  copyFileSync(spawnSync('bash', ['-c', 'command -v sleep']).stdout.toString().trim(), program);
  chmodSync(program, 0o755);
  const pid = await startAndReadLine('echo $$; exec "$1" 30', [program]);
  await until(() => readFileSync(`/proc/${pid}/stat`, 'utf8').includes('(x) Z (y)'));
  recordPid('odd', pid);

  expect(isRunning('odd')).toBe(true);
});

test.each([
  ['no pid file', undefined],
  ['an empty pid file', ''],
  ['a pid that is not a number', 'abc'],
  ['the pid of a process that has exited', '999999999'],
])('when there is %s, then is_running is false', (_name, content) => {
  if (content !== undefined) recordPid('gone', content);

  expect(isRunning('gone')).toBe(false);
});

/** The nice value of a process: field 19 of /proc/<pid>/stat. */
function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** Runs `start_daemon NAME sleep 30` and answers the daemon's pid. */
function startDaemon(name: string): number {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const result = spawnSync(
    'bash',
    ['-c', 'source "$1" && start_daemon "$2" sleep 30 && pid_of "$2"', '_', LIB, name],
    {
      env: { PATH: process.env.PATH, HOME: dir, STACK_DIR: dir, GATEWAY_CACHE: join(dir, 'cache') },
      encoding: 'utf8',
    },
  );
  if (result.status !== 0) throw new Error(result.stderr);
  const pid = Number(result.stdout.trim());
  daemons.push(pid);
  return pid;
}

test('when the stack starts an engine or a worker, then it runs at nice 10, and the api at the normal priority', () => {
  const base = niceOf(process.pid);

  expect(niceOf(startDaemon('temporal')) - base).toBe(10);
  expect(niceOf(startDaemon('process-purchases')) - base).toBe(10);
  expect(niceOf(startDaemon('api')) - base).toBe(0);
});
