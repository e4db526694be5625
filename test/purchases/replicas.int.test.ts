import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { createPurchaseBody } from '../../api/purchases/request';
import { createPurchase } from '../../api/purchases/service';
import { createWorkflowStarter } from '../../api/purchases/starter';
import { createLogger } from '../../common/logger';
import { eventually } from '../config';
import { freshDatabase } from '../database';
import { exited, logLine, startService } from '../processes';
import { tcpProxy } from '../tcp-proxy';
import type { TcpProxy } from '../tcp-proxy';
import type { Platform } from './harness';
import { createProduct, idleStarter, post, purchaseBody, startPlatform } from './harness';
import { chargesFor, finalState, ledger } from './helpers';

/*
 * Two of every stateless service, each its own OS process from dist/: two apis, two
 * process-purchases and two payment-processing workers, on this file's task queues and
 * sandbox. Nothing runs in this process but the sandbox and the clients that check.
 * The database is this file's own, so only these apis' relays sweep its outbox.
 */
let db: { url: string; drop: () => Promise<void> };
let platform: Platform;
const children: ChildProcessWithoutNullStreams[] = [];
let apis: { url: string; child: ChildProcessWithoutNullStreams }[];
/** The second api reaches Temporal through this, so a test can make that link hang. */
let victimLink: TcpProxy;

/** The variables every replica shares: the platform's queues, sandbox and retry policy. */
function replicaEnv(): Record<string, string> {
  const c = platform.config;
  return {
    DATABASE_URL: db.url,
    API_PORT: '0',
    PURCHASES_TASK_QUEUE: c.PURCHASES_TASK_QUEUE,
    PAYMENTS_TASK_QUEUE: c.PAYMENTS_TASK_QUEUE,
    PROVIDER_URL: platform.sandboxUrl,
    PROVIDER_TIMEOUT_MS: String(c.PROVIDER_TIMEOUT_MS),
    PAYMENT_RETRY_INITIAL_MS: String(c.PAYMENT_RETRY_INITIAL_MS),
    PAYMENT_RETRY_MAX_INTERVAL_MS: String(c.PAYMENT_RETRY_MAX_INTERVAL_MS),
    PAYMENT_RETRY_MAX_ATTEMPTS: String(c.PAYMENT_RETRY_MAX_ATTEMPTS),
    SHUTDOWN_TIMEOUT_MS: '10000',
  };
}

function replica(entry: string, env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  const child = startService(entry, { ...replicaEnv(), ...env });
  children.push(child);
  return child;
}

async function startApi(
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcessWithoutNullStreams }> {
  const child = replica('dist/api/main.js', env);
  const { port } = await logLine(child, 'listening');
  const url = `http://127.0.0.1:${String(port)}`;
  await eventually(async () => ((await fetch(`${url}/health`)).ok ? true : undefined));
  return { url, child };
}

async function startWorker(entry: string): Promise<void> {
  await logLine(replica(entry), 'worker started');
}

beforeAll(async () => {
  db = await freshDatabase();
  platform = await startPlatform({ DATABASE_URL: db.url }, { services: false });
  victimLink = await tcpProxy(Number(platform.config.TEMPORAL_ADDRESS.split(':')[1]));
  const workers = [
    'dist/workers/process-purchases.js',
    'dist/workers/process-purchases.js',
    'dist/workers/payment-processing.js',
    'dist/workers/payment-processing.js',
  ];
  [apis] = await Promise.all([
    Promise.all([startApi(), startApi({ TEMPORAL_ADDRESS: `127.0.0.1:${victimLink.port}` })]),
    Promise.all(workers.map(startWorker)),
  ]);
});

afterAll(async () => {
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  const exits = running.map(exited);
  running.forEach((c) => c.kill('SIGTERM'));
  await Promise.all(exits);
  await victimLink.close();
  await platform.close();
  await db.drop();
});

const logger = createLogger('test', 'silent');

const rowOf = (purchaseId: string) =>
  platform.prisma.workflowStart.findUniqueOrThrow({ where: { purchaseId } });

/** The platform as seen through one api. */
const through = (url: string): Platform => ({ ...platform, apiUrl: url });

test('when 50 requests with one Idempotency-Key race across both apis, then there is one purchase and one charge', async () => {
  // Arrange
  const productId = await createProduct(platform.prisma);
  const key = randomUUID();
  const body = purchaseBody(productId);
  const chargesBefore = (await ledger(platform)).length;

  // Act: 25 through each api, all in flight at once.
  const answers = await Promise.all(
    Array.from({ length: 50 }, (_, i) => post(through(apis[i % 2]!.url), body, { key })),
  );

  // Assert
  expect(answers.filter((a) => ![200, 201, 202].includes(a.status))).toEqual([]);
  const ids = new Set(answers.map((a) => a.json.id));
  expect(ids.size).toBe(1);
  const id = answers[0]!.json.id as string;
  expect(await platform.prisma.purchase.count({ where: { customerId: body.customerId } })).toBe(1);
  await finalState(through(apis[0]!.url), id, ['APPROVED']);
  expect(await chargesFor(platform, id)).toHaveLength(1);
  expect(await ledger(platform)).toHaveLength(chargesBefore + 1);
});

test('when one api is killed -9 in the middle of a burst, then every purchase it accepted is approved through the other', async () => {
  // Arrange
  const productId = await createProduct(platform.prisma, { stock: 1000 });
  const [survivor, victim] = [apis[0]!, apis[1]!];
  const customers: string[] = [];
  const accepted: { id: string; by: 'survivor' | 'victim' }[] = [];
  // The victim's link to Temporal hangs after its 5th answer. At most 3 requests (one per
  // other lane) were in flight then, so of the next 4 it answers, one at least was sent
  // after the hold, and its start cannot have happened when the victim dies.
  const LANES = 4;
  const HOLD_AFTER = 5;
  const KILL_AFTER = HOLD_AFTER + LANES;
  let killed = false;

  /** One client lane: distinct purchases one after another, until the api is gone. */
  async function lane(api: typeof survivor, by: 'survivor' | 'victim'): Promise<void> {
    for (let n = 0; n < 8 && !(by === 'victim' && killed); n++) {
      const body = purchaseBody(productId);
      customers.push(body.customerId);
      const res = await post(through(api.url), body).catch(() => undefined);
      if (!res) return; // the killed api: the request never got an answer
      expect(res.status).toBe(202);
      accepted.push({ id: res.json.id as string, by });
      const count = accepted.filter((a) => a.by === by).length;
      if (by === 'victim' && count === HOLD_AFTER) victimLink.hold();
      if (by === 'victim' && count === KILL_AFTER) {
        victim.child.kill('SIGKILL');
        killed = true;
      }
    }
  }

  // Act
  const lanes = Array.from({ length: LANES }, () => [
    lane(survivor, 'survivor'),
    lane(victim, 'victim'),
  ]).flat();
  await Promise.all(lanes);
  expect(killed).toBe(true);
  const byVictim = accepted.filter((a) => a.by === 'victim').map((a) => a.id);
  // Rows the dead api left in the outbox: only the survivor's relay can start them now.
  const orphans = await platform.prisma.workflowStart.count({
    where: { purchaseId: { in: byVictim } },
  });
  expect(orphans).toBeGreaterThanOrEqual(1);

  // Assert: every purchase written ends APPROVED with one charge, also one the victim
  // committed but never answered.
  const rows = await platform.prisma.purchase.findMany({
    where: { customerId: { in: customers } },
    select: { id: true },
  });
  const ids = rows.map((r) => r.id);
  expect(ids).toEqual(expect.arrayContaining(accepted.map((a) => a.id)));
  const done = await Promise.all(
    ids.map((id) => finalState(through(survivor.url), id, ['APPROVED', 'FAILED'], 90000)),
  );
  expect(done.filter((p) => p.status !== 'APPROVED').map((p) => p.id)).toEqual([]);
  for (const id of ids) expect(await chargesFor(platform, id)).toHaveLength(1);
  expect(await platform.prisma.workflowStart.count({ where: { purchaseId: { in: ids } } })).toBe(0);
});

test('when an api of another namespace shares the outbox, then its relay leaves rows of other namespaces alone', async () => {
  // Arrange: one due row for a namespace no relay here serves, and one for the other api's
  // namespace, which Temporal does not know, so each of its starts fails and is counted.
  const productId = await createProduct(platform.prisma);
  const accept = async (namespace: string): Promise<string> => {
    const config = { ...platform.config, TEMPORAL_NAMESPACE: namespace };
    const deps = { ...platform, config, starter: idleStarter(config), logger };
    const body = createPurchaseBody.parse(purchaseBody(productId));
    const { purchase } = await createPurchase(deps, 'm_local', randomUUID(), body);
    await platform.prisma.workflowStart.update({
      where: { purchaseId: purchase.id },
      data: { nextAttemptAt: new Date() },
    });
    return purchase.id;
  };
  const foreign = await accept(`gateway-nobody-${randomUUID().slice(0, 8)}`);
  const other = await accept(`gateway-other-${randomUUID().slice(0, 8)}`);
  const connection = await Connection.connect({ address: platform.config.TEMPORAL_ADDRESS });
  const otherConfig = { ...platform.config, TEMPORAL_NAMESPACE: (await rowOf(other)).namespace };
  const relay = createWorkflowStarter({
    prisma: platform.prisma,
    sql: platform.sql,
    workflows: new Client({ connection, namespace: otherConfig.TEMPORAL_NAMESPACE }).workflow,
    connection,
    config: otherConfig,
    logger,
  });

  try {
    // Act: a second claim of its own row means a sweep ran after both rows were due.
    await eventually(async () => ((await rowOf(other)).attempts >= 2 ? true : undefined), 30000);

    // Assert
    expect(await rowOf(foreign)).toMatchObject({ attempts: 0, lastError: null });
  } finally {
    await relay.close();
    await connection.close();
  }
});
