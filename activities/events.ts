import type { Producer } from 'kafkajs';

export const EVENTS_TOPIC = 'purchases.events';
export const DLQ_TOPIC = 'payments.dlq';
export const SCHEMA_VERSION = 1;

export interface EventInput {
  type: string;
  /** The round of charging (1 unless an operator retried); part of the event's identity. */
  attempt: number;
  occurredAt: string;
  purchaseId: string;
  merchantId: string;
  workflowId: string;
  runId: string;
  data: Record<string, unknown>;
}

export interface EventEnvelope extends Omit<EventInput, 'attempt'> {
  eventId: string;
  schemaVersion: number;
}

/** The event id is stable per (purchase, event, attempt), so consumers can drop repeats. */
export function envelope(input: EventInput): EventEnvelope {
  const { attempt, ...rest } = input;
  return {
    eventId: `${input.purchaseId}:${input.type}:${attempt}`,
    schemaVersion: SCHEMA_VERSION,
    ...rest,
  };
}

export async function publish(producer: Producer, topic: string, input: EventInput): Promise<void> {
  const event = envelope(input);
  await producer.send({
    topic,
    acks: -1,
    messages: [
      {
        key: event.purchaseId,
        value: JSON.stringify(event),
        headers: { 'event-type': event.type, 'event-id': event.eventId },
      },
    ],
  });
}
