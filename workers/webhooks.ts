import { Client, Connection } from '@temporalio/client';
import { dataConverterFor } from '../common/codec';
import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import { createKafka } from '../common/kafka';
import { createLogger } from '../common/logger';
import { createWebhookActivities } from '../webhooks/activities';
import { startDispatcher } from '../webhooks/dispatcher';
import { createWebhookStore } from '../webhooks/store';
import { runWorker } from './run';

/**
 * The webhooks app: node dist/workers/webhooks.js. The dispatcher (Kafka consumer group
 * WEBHOOK_CONSUMER_GROUP) records each lifecycle event and starts its deliveries; the
 * Temporal worker on WEBHOOKS_TASK_QUEUE runs them. Both are stateless, so replicas share
 * the partitions and the queue.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('webhooks', config.LOG_LEVEL);
  const prisma = createPrisma(config.DATABASE_URL);
  const store = createWebhookStore({ prisma, config });
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: dataConverterFor(config),
  });
  const dispatcher = await startDispatcher({
    kafka: createKafka(config.KAFKA_BROKERS, 'webhooks'),
    store,
    prisma,
    workflows: client.workflow,
    config,
    logger,
  });
  await runWorker(
    config,
    logger,
    {
      taskQueue: config.WEBHOOKS_TASK_QUEUE,
      workflowsPath: require.resolve('../workflows/webhooks'),
      activities: createWebhookActivities({ store, config, logger }),
      // Each delivery mostly waits on a receiver; slots are cheap, a full worker is not.
      maxConcurrentActivityTaskExecutions: config.WEBHOOK_ACTIVITY_SLOTS,
    },
    async () => {
      await dispatcher.stop();
      await connection.close();
      await prisma.$disconnect();
    },
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
