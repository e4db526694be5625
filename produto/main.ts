import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import { serve } from '../common/http';
import { createLogger } from '../common/logger';
import { createOpenSearchClient, createOpenSearchEngine } from '../search/opensearch';
import { createProdutoApp } from './app';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('produto', config.LOG_LEVEL);
  const prisma = createPrisma(config.DATABASE_URL);
  const search = createOpenSearchEngine(createOpenSearchClient(config.OPENSEARCH_URL));
  const app = createProdutoApp({ prisma, logger, search });
  await serve(
    app,
    {
      port: config.PRODUTO_PORT,
      host: config.HTTP_HOST,
      logger,
      shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    },
    async () => {
      await search.close();
      await prisma.$disconnect();
    },
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
