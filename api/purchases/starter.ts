import type { Connection, WorkflowClient } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { grpc } from '@temporalio/proto';
import { EncryptionCodec, openJson, sealJson } from '../../common/codec';
import type { JsonPayload } from '../../common/codec';
import type { Config } from '../../common/config';
import type { PrismaClient } from '../../common/db';
import { unavailable } from '../../common/errors';
import type { Logger } from '../../common/logger';
import type { Prisma } from '../../generated/prisma/client';
import { purchaseWorkflow } from '../../workflows';
import { initialSearchAttributes } from '../../workflows/contract';
import type { PurchaseInput } from '../../workflows/contract';

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
/** A health answer older than this is asked again before a request relies on it. */
const HEALTH_FRESH_MS = 3_000;
const MAX_BACKOFF_MS = 30_000;
/** Starts in flight per relay; more would only queue inside Temporal's frontend. */
const CONCURRENCY = 8;
/** Kicks beyond this wait for the sweep instead of memory. */
const MAX_QUEUED = 1_000;

export interface PendingStart {
  purchaseId: string;
  workflowId: string;
  /** Kept in the row, so any api's relay starts it where its own api meant to. */
  taskQueue: string;
  input: PurchaseInput;
  /** The row's attempt count this relay expects to claim it at. */
  attempts: number;
  /** Set for a row this api just wrote: its lease is already ours until then. */
  leaseUntil?: number;
}

export type NewStart = Omit<PendingStart, 'attempts' | 'leaseUntil'>;

/**
 * The outbox row's write, for the purchase's transaction, and the end of its first lease.
 * The input goes in sealed by the starter (`seal`), so the row never holds the card token.
 * The namespace is the writing api's: only relays whose client starts workflows there
 * may take the row over.
 */
export function startWrite(
  db: PrismaClient,
  start: NewStart & { namespace: string },
  sealedInput: JsonPayload,
): { write: Prisma.PrismaPromise<unknown>; leaseUntil: number } {
  const leaseUntil = Date.now() + LEASE_MS;
  const write = db.workflowStart.createMany({
    data: [
      {
        purchaseId: start.purchaseId,
        workflowId: start.workflowId,
        taskQueue: start.taskQueue,
        namespace: start.namespace,
        input: sealedInput,
        nextAttemptAt: new Date(leaseUntil),
      },
    ],
  });
  return { write, leaseUntil };
}

export interface WorkflowStarter {
  /** The workflow input as the outbox row stores it: encrypted by the payload codec. */
  seal(input: PurchaseInput): Promise<JsonPayload>;
  /** Resolves when Temporal answers its health check; otherwise throws 503. */
  ensureAvailable(): Promise<void>;
  /** Starts a just-committed purchase's workflow in the background. Never throws. */
  kick(start: NewStart, leaseUntil: number): void;
  /** Stops sweeping and waits for the starts in flight; queued rows stay in the table. */
  close(): Promise<void>;
}

export interface StarterDeps {
  prisma: PrismaClient;
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
  let idle: (() => void) | undefined;
  let health: { up: boolean; at: number } | undefined;
  let probing: Promise<boolean> | undefined;

  const deadline = () => Date.now() + config.TEMPORAL_START_TIMEOUT_MS;

  function probe(): Promise<boolean> {
    probing ??= deps.connection
      .withDeadline(deadline(), () => deps.connection.healthService.check({}))
      .then(
        (res) => res.status === grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING,
        () => false,
      )
      .then((up) => {
        if (health?.up !== up) logger[up ? 'info' : 'warn']({ up }, 'temporal health changed');
        health = { up, at: Date.now() };
        probing = undefined;
        return up;
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
    while (running < CONCURRENCY && queue.length > 0) {
      const start = queue.shift()!;
      running++;
      // A database error before the start (the claim) leaves the row for a later sweep.
      void attempt(start)
        .catch((err: unknown) =>
          logger.warn({ err, purchaseId: start.purchaseId }, 'start attempt failed'),
        )
        .finally(() => {
          running--;
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
      await prisma.workflowStart.deleteMany({ where: { purchaseId: start.purchaseId } });
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
      await deps.connection.withDeadline(deadline(), () =>
        deps.workflows.start(purchaseWorkflow, {
          taskQueue: start.taskQueue,
          workflowId: start.workflowId,
          args: [start.input],
          workflowIdConflictPolicy: 'USE_EXISTING',
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          typedSearchAttributes: initialSearchAttributes(start.input),
        }),
      );
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }

  async function sweep(): Promise<void> {
    await probe();
    if (!health?.up) return;
    const due = await prisma.workflowStart.findMany({
      where: { namespace: config.TEMPORAL_NAMESPACE, nextAttemptAt: { lte: new Date() } },
      orderBy: { nextAttemptAt: 'asc' },
      take: CONCURRENCY * 4,
    });
    for (const row of due) {
      // A row sealed under a key this api lacks stays for an api that has it.
      const input = await openJson<PurchaseInput>(codec, row.input).catch((err: unknown) => {
        logger.error({ err, purchaseId: row.purchaseId }, 'outbox row cannot be opened');
      });
      if (!input) continue;
      enqueue({
        purchaseId: row.purchaseId,
        workflowId: row.workflowId,
        taskQueue: row.taskQueue,
        input,
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

  return {
    seal: (input) => sealJson(codec, input),
    async ensureAvailable() {
      const fresh = health && Date.now() - health.at < HEALTH_FRESH_MS;
      const up = fresh ? health!.up : await probe();
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
      queue.length = 0;
      await sweeping;
      if (running > 0) await new Promise<void>((resolve) => (idle = resolve));
    },
  };
}
