import { loadConfig } from '../common/config';
import { serve } from '../common/http';
import { createLogger } from '../common/logger';
import { createSandboxApp } from './app';

// Slow and timeout answers are meant to hang; after this long at shutdown they are cut off.
const DRAIN_GRACE_MS = 1000;

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('provider-sandbox', config.LOG_LEVEL);
  await serve(createSandboxApp(logger), {
    port: config.PROVIDER_SANDBOX_PORT,
    host: config.HTTP_HOST,
    logger,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    cutOffAfterMs: Math.min(DRAIN_GRACE_MS, config.SHUTDOWN_TIMEOUT_MS / 2),
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
