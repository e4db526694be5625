import { loadConfig } from '../common/config';
import { listen } from '../common/http';
import { createLogger } from '../common/logger';
import { onShutdown } from '../common/shutdown';
import { createSandboxApp } from './app';

// Slow and timeout answers are meant to hang; after this long at shutdown they are cut off.
const DRAIN_GRACE_MS = 1000;

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('provider-sandbox', config.LOG_LEVEL);
  const { server, port, close } = await listen(
    createSandboxApp(logger),
    config.PROVIDER_SANDBOX_PORT,
    config.HTTP_HOST,
  );

  onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, async () => {
    const graceMs = Math.min(DRAIN_GRACE_MS, config.SHUTDOWN_TIMEOUT_MS / 2);
    const cutOff = setTimeout(() => server.closeAllConnections(), graceMs);
    cutOff.unref();
    try {
      await close();
    } finally {
      clearTimeout(cutOff);
    }
  });
  // Logged once SIGTERM is handled: supervisors and tests take this line as ready.
  logger.info({ port }, 'listening');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
