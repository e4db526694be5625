import { createPaymentActivities } from '../activities';
import { SandboxProvider } from '../activities/provider/sandbox';
import { loadConfig } from '../common/config';
import { createLogger } from '../common/logger';
import { runWorker } from './run';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('payment-processing', config.LOG_LEVEL);
  const provider = new SandboxProvider(config.PROVIDER_URL, config.PROVIDER_TIMEOUT_MS);
  await runWorker(
    config,
    logger,
    { taskQueue: config.PAYMENTS_TASK_QUEUE, activities: createPaymentActivities({ provider }) },
    () => Promise.resolve(),
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
