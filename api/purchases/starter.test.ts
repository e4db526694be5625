import type { WorkflowClient } from '@temporalio/client';
import type { PrismaClient } from '../../common/db';
import { loadConfig } from '../../common/config';
import { createLogger } from '../../common/logger';
import type { PurchaseInput } from '../../workflows/contract';
import { createWorkflowStarter } from './starter';
import type { StarterDeps } from './starter';

const SERVING = 1;

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
      { purchaseId: 'pur_1', workflowId: 'w', taskQueue: 'q', input: {} as PurchaseInput },
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
