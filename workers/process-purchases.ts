import { createPurchaseActivities, createRefundActivities } from '../activities';
import { loadConfig } from '../common/config';
import { createPrisma, createSqlPool } from '../common/db';
import { createKafka, createProducer } from '../common/kafka';
import { createLogger } from '../common/logger';
import { runWorker } from './run';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('process-purchases', config.LOG_LEVEL);
  const prisma = createPrisma(config.DATABASE_URL);
  const sql = createSqlPool(config.DATABASE_URL);
  const producer = createProducer(createKafka(config.KAFKA_BROKERS, 'process-purchases'));
  await producer.connect();
  await runWorker(
    config,
    logger,
    {
      taskQueue: config.PURCHASES_TASK_QUEUE,
      workflowsPath: require.resolve('../workflows'),
      activities: {
        ...createPurchaseActivities({ prisma, sql, producer, logger }),
        ...createRefundActivities({ sql, producer, logger }),
      },
    },
    async () => {
      await producer.disconnect(); // flushes what is in flight
      await prisma.$disconnect();
      await sql.end();
    },
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
