import { Client, Connection } from '@temporalio/client';
import { dataConverterFor } from '../common/codec';
import { loadConfig } from '../common/config';
import { createPrisma, createSqlPool } from '../common/db';
import { serve } from '../common/http';
import { createLogger } from '../common/logger';
import { createOpenSearchClient, createOpenSearchEngine } from '../search/opensearch';
import { createApiApp } from './app';
import { createWorkflowStarter } from './purchases/starter';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('api', config.LOG_LEVEL);
  const prisma = createPrisma(config.DATABASE_URL, 20);
  const sql = createSqlPool(config.DATABASE_URL, 20);
  // Lazy: the api starts, and answers 503 for new purchases, while Temporal is away.
  const connection = Connection.lazy({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: dataConverterFor(config),
  });
  const search = createOpenSearchEngine(createOpenSearchClient(config.OPENSEARCH_URL));
  const starter = createWorkflowStarter({
    prisma,
    sql,
    workflows: client.workflow,
    connection,
    config,
    logger,
  });
  // Bounded by TEMPORAL_START_TIMEOUT_MS; without it the first second's purchases get 503.
  await starter.ready();
  const app = createApiApp({
    prisma,
    sql,
    starter,
    config,
    logger,
    search,
    workflows: client.workflow,
  });
  await serve(
    app,
    {
      port: config.API_PORT,
      host: config.HTTP_HOST,
      logger,
      shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    },
    async () => {
      await starter.close();
      await connection.close();
      await search.close();
      await prisma.$disconnect();
      await sql.end();
    },
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
