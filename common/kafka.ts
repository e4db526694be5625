import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { Admin, Producer } from 'kafkajs';

export const TOPICS = [
  // Keyed by purchase id: 6 partitions keep per-purchase order and leave room for consumers.
  { topic: 'purchases.events', numPartitions: 6, replicationFactor: 1 },
  { topic: 'payments.dlq', numPartitions: 3, replicationFactor: 1 },
];

export function createKafka(brokers: string[], clientId: string): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.WARN, retry: { retries: 5 } });
}

/** Creates the project's topics with their declared partitions; a no-op when they exist. */
export async function ensureTopics(admin: Admin): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = TOPICS.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) {
    await admin.createTopics({ topics: missing, waitForLeaders: true });
  }
}

/** Idempotent, one request in flight: no duplicates and no reordering on retries. */
export function createProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
}
