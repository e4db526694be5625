import type { Consumer, Kafka } from 'kafkajs';
import { z } from 'zod';
import { purchaseState } from '../activities/purchases';
import { DLQ_TOPIC, EVENTS_TOPIC } from '../activities/events';
import type { Config } from '../common/config';
import type { PrismaClient } from '../common/db';
import type { Logger } from '../common/logger';
import { isLifecycleType } from './contract';
import { fanOut } from './fan-out';
import type { FanOutDeps } from './fan-out';
import type { WebhookStore } from './store';

/*
 * The webhook dispatcher: lifecycle events from Kafka -> a webhook_events row each -> one
 * delivery workflow per subscribed endpoint. It only records and starts; the deliveries
 * run on the webhooks task queue, so no receiver, however slow, holds up this consumer.
 * An offset is committed once its event is recorded and its deliveries started, so a
 * crash replays messages, and replays record and start nothing new (the event id is the
 * row's key and part of each workflow id).
 */

/** payment.failed travels on the dead-letter topic; every other lifecycle type on the events topic. */
export const WEBHOOK_SOURCE_TOPICS = [EVENTS_TOPIC, DLQ_TOPIC];

const envelopeSchema = z.looseObject({
  eventId: z.string().min(1).max(255),
  schemaVersion: z.number().int(),
  type: z.string().min(1).max(64),
  occurredAt: z.string(),
  purchaseId: z.string().min(1).max(40),
  merchantId: z.string().min(1).max(64),
  workflowId: z.string().optional(),
  runId: z.string().optional(),
  data: z.record(z.string(), z.unknown()).default({}),
});

export type LifecycleEnvelope = z.infer<typeof envelopeSchema>;

export interface DispatcherDeps extends FanOutDeps {
  kafka: Kafka;
  store: WebhookStore;
  /** For the purchase's status and version, read through its owner (activities/purchases.ts). */
  prisma: PrismaClient;
  config: FanOutDeps['config'] & Pick<Config, 'WEBHOOK_CONSUMER_GROUP' | 'WEBHOOK_CONSUMER_FROM'>;
  logger: Logger;
}

export interface Dispatcher {
  /** Settles once the group is joined and the first fetch is answered: offsets are then fixed. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/** Records one envelope and starts its deliveries; returns how many were started. */
export async function dispatch(
  deps: Omit<DispatcherDeps, 'kafka' | 'logger'>,
  envelope: LifecycleEnvelope,
): Promise<number> {
  if (!isLifecycleType(envelope.type)) return 0;
  // Read once, when the event is first recorded: a receiver compares versions to drop a stale one.
  const purchase = (await purchaseState(deps.prisma, envelope.purchaseId)) ?? null;
  const event = await deps.store.recordEvent({
    id: envelope.eventId,
    merchantId: envelope.merchantId,
    type: envelope.type,
    purchaseId: envelope.purchaseId,
    payload: { ...envelope, purchase },
  });
  return (await fanOut(deps, event)).length;
}

export async function startDispatcher(deps: DispatcherDeps): Promise<Dispatcher> {
  const { kafka, logger } = deps;
  const groupId = deps.config.WEBHOOK_CONSUMER_GROUP;
  const consumer: Consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  let joined = false;
  let markReady = (): void => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    joined = true;
    logger.info({ groupId, assignment: e.payload.memberAssignment }, 'dispatcher started');
  });
  consumer.on(consumer.events.FETCH, () => {
    if (joined) markReady();
  });
  await consumer.connect();
  await consumer.subscribe({
    topics: WEBHOOK_SOURCE_TOPICS,
    fromBeginning: deps.config.WEBHOOK_CONSUMER_FROM === 'earliest',
  });
  await consumer.run({
    // Partitions are independent (keyed by purchase): a slow start on one holds up only it.
    partitionsConsumedConcurrently: 6,
    eachMessage: async ({ topic, partition, message }) => {
      let envelope: LifecycleEnvelope;
      try {
        envelope = envelopeSchema.parse(JSON.parse(message.value?.toString() ?? ''));
      } catch {
        // An unreadable message would block its partition forever; it can carry no webhook.
        logger.error({ topic, partition, offset: message.offset }, 'skipping an unreadable event');
        return;
      }
      // A failure here (the database, Temporal) throws: kafkajs retries the message and,
      // past its retries, restarts the consumer from the committed offset.
      await dispatch(deps, envelope);
    },
  });
  return {
    ready,
    stop: () => consumer.disconnect(),
  };
}
