import type { WorkflowClient } from '@temporalio/client';
import type { PrismaClient } from '../../common/db';
import { loadConfig } from '../../common/config';
import { createLogger } from '../../common/logger';
import type { PurchaseInput } from '../../workflows/contract';
import { createWorkflowStarter } from './starter';
import type { StarterDeps } from './starter';

const SERVING = 1;
const noSql = { query: () => Promise.resolve([]) } as unknown as StarterDeps['sql'];

test('when the database fails while a start claims its row, then the error is logged and nothing crashes', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  const warnings: string[] = [];
  const logger = createLogger('t', 'silent');
  logger.warn = ((_obj: unknown, msg: string) =>
    warnings.push(msg)) as unknown as typeof logger.warn;
  let starts = 0;
  const deps: StarterDeps = {
    prisma: {
      workflowStart: {
        updateMany: () => Promise.reject(new Error('database went away')),
        findMany: () => Promise.resolve([]),
      },
    } as unknown as PrismaClient,
    sql: noSql,
    workflows: { start: () => Promise.resolve(starts++) } as unknown as WorkflowClient,
    connection: {
      withDeadline: (_d: number, fn: () => Promise<unknown>) => fn(),
      healthService: { check: () => Promise.resolve({ status: SERVING }) },
    } as unknown as StarterDeps['connection'],
    config: loadConfig({ NODE_ENV: 'test' }),
    logger,
  };
  const starter = createWorkflowStarter(deps);
  try {
    // A lease that is not this relay's, so the attempt claims the row first.
    starter.kick(
      {
        workflowType: 'purchase',
        purchaseId: 'pur_1',
        workflowId: 'w',
        taskQueue: 'q',
        input: {} as PurchaseInput,
      },
      0,
    );
    await new Promise((r) => setTimeout(r, 50));

    expect(starts).toBe(0);
    expect(warnings).toContain('start attempt failed');
    expect(unhandled).toEqual([]);
  } finally {
    await starter.close();
    process.off('unhandledRejection', onUnhandled);
  }
});

/** A starter over fakes whose health service answers with `check`; it never starts anything. */
function starterWithHealth(check: () => Promise<{ status: number }>) {
  return createWorkflowStarter({
    prisma: {
      workflowStart: { findMany: () => Promise.resolve([]) },
    } as unknown as PrismaClient,
    sql: noSql,
    workflows: {} as WorkflowClient,
    connection: {
      withDeadline: (_d: number, fn: () => Promise<unknown>) => fn(),
      healthService: { check },
    } as unknown as StarterDeps['connection'],
    config: loadConfig({ NODE_ENV: 'test' }),
    logger: createLogger('t', 'silent'),
  });
}

test('when a health probe hangs, then ensureAvailable answers from the last probe without waiting', async () => {
  let calls = 0;
  let hang = false;
  let release = (): void => undefined;
  const starter = starterWithHealth(() => {
    calls++;
    if (!hang) return Promise.resolve({ status: SERVING });
    return new Promise((resolve) => (release = () => resolve({ status: SERVING })));
  });
  try {
    await starter.ready();
    hang = true;
    // Past the age at which an answer used to be asked again inline.
    await new Promise((r) => setTimeout(r, 3100));

    const answer = starter.ensureAvailable();

    // Answered synchronously: nothing to await, so nothing waits for the stuck probe.
    expect(answer).toBeUndefined();
    expect(calls).toBeGreaterThanOrEqual(2);
  } finally {
    release();
    await starter.close();
  }
});

test('when the last probe found Temporal down, then a new purchase gets 503 without a probe of its own', async () => {
  let calls = 0;
  const starter = starterWithHealth(() => {
    calls++;
    return Promise.resolve({ status: 2 }); // NOT_SERVING
  });
  try {
    await starter.ready();
    const before = calls;

    const refusal = (() => {
      try {
        starter.ensureAvailable();
      } catch (err) {
        return err;
      }
    })();

    expect(refusal).toMatchObject({ status: 503, headers: { 'Retry-After': '5' } });
    expect(calls).toBe(before);
  } finally {
    await starter.close();
  }
});

test('when the starter closes while a health probe is in flight, then close waits for it', async () => {
  let settled = false;
  const starter = starterWithHealth(
    () =>
      new Promise((resolve) =>
        setTimeout(() => {
          settled = true;
          resolve({ status: SERVING });
        }, 100),
      ),
  );

  await starter.close();

  // Otherwise the caller closes the connection under the probe's gRPC retries.
  expect(settled).toBe(true);
});
