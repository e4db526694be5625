import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Client } from '@opensearch-project/opensearch';
import { createPrisma } from '../../common/db';
import type { PrismaClient } from '../../common/db';
import { createKafka } from '../../common/kafka';
import { createLogger } from '../../common/logger';
import { seedLocal } from '../../ops/seed';
import { connectorStatus, isRunning, registerConnectors } from '../../search/connect';
import type { SearchEngine } from '../../search/engine';
import { startIndexer } from '../../search/indexer';
import type { Indexer } from '../../search/indexer';
import { createOpenSearchClient, createOpenSearchEngine } from '../../search/opensearch';
import { eventually, testConfig } from '../config';

export const CONNECTOR = 'gateway-mariadb';
export const CONNECTORS_DIR = join(__dirname, '../../connectors');

/**
 * The real pipeline, isolated per test file: the connector (shared, registered
 * idempotently), an in-process indexer in its own consumer group writing to its own
 * indices (`it-<id>-products` ...), so files running side by side cannot mask each other.
 */
export interface Pipeline {
  prisma: PrismaClient;
  /** Reads and verifies straight against OpenSearch. */
  engine: SearchEngine;
  prefix: string;
  /** Starts (or restarts) the indexer; `opensearchUrl` lets a test put a proxy in between. */
  startIndexer(opensearchUrl?: string): Promise<void>;
  close(): Promise<void>;
}

export async function startPipeline(): Promise<Pipeline> {
  const prefix = `it-${randomUUID().slice(0, 8)}-`;
  const prisma = createPrisma(testConfig.DATABASE_URL, 5);
  try {
    await seedLocal(prisma);
    await registerConnectors(testConfig, CONNECTORS_DIR);
    await waitForConnector();
  } catch (err) {
    // An open pool would keep jest from exiting after the failure.
    await prisma.$disconnect();
    throw err;
  }
  const engine = createOpenSearchEngine(createOpenSearchClient(testConfig.OPENSEARCH_URL), {
    prefix,
  });
  const logger = createLogger('search-indexer', testConfig.LOG_LEVEL);
  const kafka = createKafka(testConfig.KAFKA_BROKERS, `${prefix}indexer`);
  let indexer: { it: Indexer; engine: SearchEngine } | undefined;

  return {
    prisma,
    engine,
    prefix,
    async startIndexer(opensearchUrl = testConfig.OPENSEARCH_URL) {
      const own = createOpenSearchEngine(createOpenSearchClient(opensearchUrl), { prefix });
      const it = await startIndexer({
        kafka,
        engine: own,
        logger,
        groupId: `${prefix}indexer`,
        maxRetryDelayMs: 500,
      });
      indexer = { it, engine: own };
    },
    async close() {
      await indexer?.it.stop();
      await indexer?.engine.close();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteGroups([`${prefix}indexer`]).catch(() => undefined);
      await admin.disconnect();
      const client = new Client({ node: testConfig.OPENSEARCH_URL });
      await client.indices.delete({ index: `${prefix}*` }, { ignore: [404] });
      await client.close();
      await engine.close();
      await prisma.$disconnect();
    },
  };
}

export async function waitForConnector(timeoutMs = 60000): Promise<void> {
  await eventually(async () => {
    const status = await connectorStatus(testConfig.KAFKA_CONNECT_URL, CONNECTOR);
    return isRunning(status) || undefined;
  }, timeoutMs);
}

/** A token no other document contains, letters only (the analysers keep it whole). */
export function uniqueWord(): string {
  const letters = 'bcdfghjklmnpqrtvwxz';
  return Array.from({ length: 10 }, () => letters[Math.floor(Math.random() * letters.length)]).join(
    '',
  );
}
