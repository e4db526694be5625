import type { Kafka } from 'kafkajs';
import { DLQ_TOPIC } from '../activities/events';
import type { EventEnvelope } from '../activities/events';

/** Reads every message on the DLQ topic, without committing offsets. */
export async function readDeadLetters(kafka: Kafka): Promise<EventEnvelope[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(DLQ_TOPIC);
  await admin.disconnect();
  const remaining = new Map(
    ends.filter((p) => Number(p.high) > Number(p.low)).map((p) => [p.partition, Number(p.high)]),
  );
  const found: EventEnvelope[] = [];
  if (remaining.size === 0) return found;
  const consumer = kafka.consumer({ groupId: `dlq-reader-${process.pid}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: DLQ_TOPIC, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out reading the DLQ')), 30000);
    void consumer.run({
      autoCommit: false,
      eachMessage: ({ partition, message }) => {
        if (message.value) found.push(JSON.parse(message.value.toString()) as EventEnvelope);
        if (Number(message.offset) + 1 >= (remaining.get(partition) ?? 0))
          remaining.delete(partition);
        if (remaining.size === 0) {
          clearTimeout(timer);
          resolve();
        }
        return Promise.resolve();
      },
    });
  });
  await consumer.disconnect();
  return found;
}
