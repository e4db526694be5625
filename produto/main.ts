import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import { listen } from '../common/http';
import { createLogger } from '../common/logger';
import { onShutdown } from '../common/shutdown';
import { createOpenSearchClient, createOpenSearchEngine } from '../search/opensearch';
import { createProdutoApp } from './app';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('produto', config.LOG_LEVEL);
  const prisma = createPrisma(config.DATABASE_URL);
  const search = createOpenSearchEngine(createOpenSearchClient(config.OPENSEARCH_URL));
  const app = createProdutoApp({ prisma, logger, search });
  const http = await listen(app, config.PRODUTO_PORT, config.HTTP_HOST);
  onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, async () => {
    await http.close();
    await search.close();
    await prisma.$disconnect();
  });
  // Logged once SIGTERM is handled: supervisors and tests take this line as ready.
  logger.info({ port: http.port }, 'listening');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
