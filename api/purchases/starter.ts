import type { Connection, WorkflowClient } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { grpc } from '@temporalio/proto';
import { EncryptionCodec, openJson, sealJson } from '../../common/codec';
import type { JsonPayload } from '../../common/codec';
import type { Config } from '../../common/config';
import type { PrismaClient, SqlPool, Statement } from '../../common/db';
import { unavailable } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { initialSearchAttributes } from '../../workflows/contract';
import { StartWindow } from './start-window';
import type { PurchaseInput, RefundInput } from '../../workflows/contract';

/*
 * Workflow starts go through an outbox. The api commits the purchase, its key and a
 * `workflow_starts` row in one transaction and answers 202; this relay then starts the
 * workflow and deletes the row. A row whose start failed, or whose api died, is picked up
 * again by any api's relay once its lease runs out, so an accepted purchase always gets
 * its workflow. New purchases are refused with 503 while Temporal does not answer its
 * health check, so nothing is accepted that cannot soon be started.
 */

/** How long one attempt owns a row before another relay may take it over. */
const LEASE_MS = 15_000;
const SWEEP_EVERY_MS = 1_000;
/** Temporal's health is asked this often in the background; requests read the last answer. */
const PROBE_EVERY_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;
/** Starts in flight per relay; more would only queue inside Temporal's frontend. */
const CONCURRENCY = 8;
/** Kicks beyond this wait for the sweep instead of memory. */
const MAX_QUEUED = 1_000;
/** How often the relay looks up which of its started purchases the workers admitted. */
const PACE_EVERY_MS = 250;

/** The workflow types the outbox starts, with their inputs. */
export type StartSubject =
  | { workflowType: 'purchase'; input: PurchaseInput }
  | { workflowType: 'refund'; input: RefundInput };

export type PendingStart = StartSubject & {
  /** The purchase's id, or for a refund the refund's (the row's key). */
  purchaseId: string;
  workflowId: string;
  /** Kept in the row, so any api's relay starts it where its own api meant to. */
  taskQueue: string;
  /** The row's attempt count this relay expects to claim it at. */
  attempts: number;
  /** Set for a row this api just wrote: its lease is already ours until then. */
  leaseUntil?: number;
};

export type NewStart = StartSubject &
  Omit<PendingStart, 'attempts' | 'leaseUntil' | keyof StartSubject>;

/**
 * The outbox row's insert, for the purchase's transaction, and the end of its first lease.
 * The input goes in sealed by the starter (`seal`), so the row never holds the card token.
 * The namespace is the writing api's: only relays whose client starts workflows there
 * may take the row over.
 */
export function startInsert(
  start: NewStart & { namespace: string },
  sealedInput: JsonPayload,
): { insert: Statement; leaseUntil: number } {
  const now = Date.now();
  const leaseUntil = now + LEASE_MS;
  const insert = {
    sql: `INSERT INTO workflow_starts (purchase_id, workflow_id, task_queue, namespace,
      workflow_type, input, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    values: [
      start.purchaseId,
      start.workflowId,
      start.taskQueue,
      start.namespace,
      start.workflowType,
      JSON.stringify(sealedInput),
      new Date(leaseUntil),
      new Date(now),
    ],
  };
  return { insert, leaseUntil };
}

export interface WorkflowStarter {
  /** The workflow input as the outbox row stores it: encrypted by the payload codec. */
  seal(input: PurchaseInput | RefundInput): Promise<JsonPayload>;
  /** Settles once the first health probe has answered, up or down. */
  ready(): Promise<void>;
  /** Throws 503 unless the last health probe found Temporal serving; never waits for one. */
  ensureAvailable(): void;
  /** Starts a just-committed purchase's workflow in the background. Never throws. */
  kick(start: NewStart, leaseUntil: number): void;
  /** Stops sweeping and waits for the starts in flight; queued rows stay in the table. */
  close(): Promise<void>;
}

export interface StarterDeps {
  prisma: PrismaClient;
  /** For the delete after each start: once per purchase, so Prisma's CPU would show. */
  sql: Pick<SqlPool, 'query'>;
  workflows: WorkflowClient;
  connection: Pick<Connection, 'withDeadline' | 'healthService'>;
  config: Config;
  logger: Logger;
}

export function createWorkflowStarter(deps: StarterDeps): WorkflowStarter {
  const { prisma, config, logger } = deps;
  const codec = new EncryptionCodec(config);
  const queue: PendingStart[] = [];
  const queued = new Set<string>();
  let running = 0;
  let closed = false;
  /** A window per task queue: a queue nobody works on holds back only its own starts. */
  const lanes = new Map<string, { window: StartWindow; running: number }>();
  const laneOf = (taskQueue: string) => {
    let lane = lanes.get(taskQueue);
    if (!lane) lanes.set(taskQueue, (lane = { window: new StartWindow(), running: 0 }));
    return lane;
  };
  let idle: (() => void) | undefined;
  /** Temporal's last health answer; unknown until the first probe settles. */
  let up: boolean | undefined;
  let probing: Promise<boolean> | undefined;

  const deadline = () => Date.now() + config.TEMPORAL_START_TIMEOUT_MS;

  function probe(): Promise<boolean> {
    probing ??= deps.connection
      .withDeadline(deadline(), () => deps.connection.healthService.check({}))
      .then(
        (res) => res.status === grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING,
        () => false,
      )
      .then((serving) => {
        if (up !== serving)
          logger[serving ? 'info' : 'warn']({ up: serving }, 'temporal health changed');
        up = serving;
        probing = undefined;
        return serving;
      });
    return probing;
  }

  function enqueue(start: PendingStart): void {
    if (closed || queued.has(start.purchaseId) || queue.length >= MAX_QUEUED) return;
    queued.add(start.purchaseId);
    queue.push(start);
    pump();
  }

  function pump(): void {
    for (let i = 0; running < CONCURRENCY && i < queue.length;) {
      const start = queue[i]!;
      // Only purchases are paced: a refund's start is not admitted by the purchase workers.
      const lane =
        start.workflowType === 'purchase'
          ? laneOf(start.taskQueue)
          : { running: 0, window: undefined };
      if (lane.window && lane.running >= lane.window.room()) {
        i++;
        continue;
      }
      queue.splice(i, 1);
      running++;
      lane.running++;
      // A database error before the start (the claim) leaves the row for a later sweep.
      void attempt(start)
        .catch((err: unknown) =>
          logger.warn({ err, purchaseId: start.purchaseId }, 'start attempt failed'),
        )
        .finally(() => {
          running--;
          lane.running--;
          queued.delete(start.purchaseId);
          if (running === 0 && queue.length === 0) idle?.();
          pump();
        });
    }
  }

  /**
   * A row is claimed at its expected attempt count, so two relays never work one row at
   * once; a row this api just wrote needs no claim while its first lease lasts.
   */
  async function attempt(start: PendingStart): Promise<void> {
    const ours =
      start.leaseUntil && Date.now() + config.TEMPORAL_START_TIMEOUT_MS < start.leaseUntil;
    if (!ours) {
      const claimed = await prisma.workflowStart.updateMany({
        where: { purchaseId: start.purchaseId, attempts: start.attempts },
        data: { attempts: { increment: 1 }, nextAttemptAt: new Date(Date.now() + LEASE_MS) },
      });
      if (claimed.count === 0) return;
    }
    try {
      await startWorkflow(start);
      if (start.workflowType === 'purchase') {
        laneOf(start.taskQueue).window.started(start.purchaseId, Date.now());
      }
      await deps.sql.query('DELETE FROM workflow_starts WHERE purchase_id = ?', [start.purchaseId]);
    } catch (err) {
      const backoff = Math.min(1000 * 2 ** start.attempts, MAX_BACKOFF_MS);
      logger.warn({ err, purchaseId: start.purchaseId }, 'workflow start failed; will retry');
      await prisma.workflowStart
        .updateMany({
          where: { purchaseId: start.purchaseId },
          data: {
            nextAttemptAt: new Date(Date.now() + backoff),
            lastError: (err instanceof Error ? err.message : String(err)).slice(0, 500),
          },
        })
        .catch((e: unknown) => logger.error({ err: e }, 'could not record a failed start'));
    }
  }

  /**
   * The workflow id is the purchase's own, so any run with it, open or closed, is this
   * purchase's: an open one is used as it is, and a closed one counts as started. A
   * second run of one purchase can never begin, whatever attempt or relay asks.
   */
  async function startWorkflow(start: PendingStart): Promise<void> {
    try {
      const options = {
        taskQueue: start.taskQueue,
        workflowId: start.workflowId,
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      } as const;
      await deps.connection.withDeadline(deadline(), () =>
        start.workflowType === 'purchase'
          ? deps.workflows.start('purchase', {
              ...options,
              args: [start.input],
              typedSearchAttributes: initialSearchAttributes(start.input),
            })
          : deps.workflows.start('refund', { ...options, args: [start.input] }),
      );
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }

  /** Frees the windows' places of the purchases the workers have admitted. */
  async function pace(): Promise<void> {
    const waiting = [...lanes.values()].flatMap((lane) => lane.window.waiting());
    if (waiting.length > 0) {
      const rows = await deps.sql.query<{ id: string }[]>(
        "SELECT id FROM purchases WHERE id IN (?) AND status <> 'RECEIVED'",
        [waiting],
      );
      const admitted = rows.map((r) => r.id);
      const now = Date.now();
      for (const lane of lanes.values()) lane.window.observe(admitted, now);
    }
    pump();
  }

  async function sweep(): Promise<void> {
    if (!up) return;
    const due = await prisma.workflowStart.findMany({
      where: { namespace: config.TEMPORAL_NAMESPACE, nextAttemptAt: { lte: new Date() } },
      orderBy: { nextAttemptAt: 'asc' },
      // What the queue has room for; the rest waits in the table.
      take: Math.min(MAX_QUEUED - queue.length, 200),
    });
    for (const row of due) {
      // A row sealed under a key this api lacks stays for an api that has it.
      const input = await openJson<PurchaseInput & RefundInput>(codec, row.input).catch(
        (err: unknown) => {
          logger.error({ err, purchaseId: row.purchaseId }, 'outbox row cannot be opened');
        },
      );
      if (!input) continue;
      const subject: StartSubject =
        row.workflowType === 'refund'
          ? { workflowType: 'refund', input }
          : { workflowType: 'purchase', input };
      enqueue({
        ...subject,
        purchaseId: row.purchaseId,
        workflowId: row.workflowId,
        taskQueue: row.taskQueue,
        attempts: row.attempts,
      });
    }
  }

  let sweeping: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    sweeping = sweeping
      .then(sweep)
      .catch((err: unknown) => logger.warn({ err }, 'workflow start sweep failed'));
  }, SWEEP_EVERY_MS);
  timer.unref();
  let pacing: Promise<void> = Promise.resolve();
  const pacer = setInterval(() => {
    pacing = pacing.then(pace).catch((err: unknown) => logger.warn({ err }, 'pacing failed'));
  }, PACE_EVERY_MS);
  pacer.unref();
  const first = probe();
  const prober = setInterval(() => void probe(), PROBE_EVERY_MS);
  prober.unref();

  return {
    seal: (input) => sealJson(codec, input),
    ready: () => first.then(() => undefined),
    ensureAvailable() {
      // The last answer, never a probe of its own: a slow Temporal must not slow intake.
      if (!up) {
        throw unavailable(
          'the payment engine is unavailable; retry with the same Idempotency-Key',
          5,
        );
      }
    },
    kick(start, leaseUntil) {
      enqueue({ ...start, attempts: 0, leaseUntil });
    },
    async close() {
      closed = true;
      clearInterval(timer);
      clearInterval(prober);
      clearInterval(pacer);
      queue.length = 0;
      // A probe runs to its deadline; the connection must outlive its gRPC retries.
      await Promise.all([sweeping, probing, pacing]);
      if (running > 0) await new Promise<void>((resolve) => (idle = resolve));
    },
  };
}
