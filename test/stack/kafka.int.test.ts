import { randomUUID } from 'node:crypto';
import { createKafka } from '../../common/kafka';
import { testConfig } from '../config';

test('when kafkajs produces a message to Kafka 4 in KRaft mode, then a consumer reads it back', async () => {
  const kafka = createKafka(testConfig.KAFKA_BROKERS, 'stack-test');
  const topic = `stack-test-${randomUUID()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const consumer = kafka.consumer({ groupId: `g-${topic}` });
  try {
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'k1', value: 'hello' }] });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });

    const received = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message in 30 s')), 30000);
      void consumer.run({
        eachMessage: ({ message }) => {
          clearTimeout(timer);
          resolve(`${message.key?.toString()}=${message.value?.toString()}`);
          return Promise.resolve();
        },
      });
    });

    expect(received).toBe('k1=hello');
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] });
    await admin.disconnect();
  }
});
