import { loadConfig } from '../common/config';
import { createKafka } from '../common/kafka';
import { createLogger } from '../common/logger';
import { onShutdown } from '../common/shutdown';
import { startIndexer } from '../search/indexer';
import { createOpenSearchClient, createOpenSearchEngine } from '../search/opensearch';

/** The search indexer app: node dist/workers/search-indexer.js (consumer group "search-indexer"). */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('search-indexer', config.LOG_LEVEL);
  const engine = createOpenSearchEngine(createOpenSearchClient(config.OPENSEARCH_URL));
  const kafka = createKafka(config.KAFKA_BROKERS, 'search-indexer');
  const indexer = await startIndexer({ kafka, engine, logger, groupId: 'search-indexer' });
  onShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, async () => {
    await indexer.stop();
    await engine.close();
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
