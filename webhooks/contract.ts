/*
 * What the webhook pieces share: the event types a merchant may subscribe to, the
 * delivery workflow's input and its ids. Imported by workflow code, so no I/O here.
 */

/**
 * Purchase lifecycle events delivered as webhooks: the one list the api checks
 * subscriptions against and the dispatcher filters the topics by. A new lifecycle type
 * needs adding here only. Types not listed (purchase.requested, purchase.duplicate,
 * purchase.rejected) stay internal.
 */
export const LIFECYCLE_EVENT_TYPES = [
  'payment.approved',
  'payment.declined',
  'payment.failed',
  'purchase.canceled',
  'purchase.authorized',
  'purchase.captured',
  'purchase.voided',
  'refund.succeeded',
  'refund.failed',
] as const;

/** Recorded, and delivered to the merchant's other endpoints, when one is disabled. */
export const ENDPOINT_DISABLED_EVENT = 'webhook_endpoint.disabled';

export const WEBHOOK_EVENT_TYPES: readonly string[] = [
  ...LIFECYCLE_EVENT_TYPES,
  ENDPOINT_DISABLED_EVENT,
];

export const isLifecycleType = (type: string): boolean =>
  (LIFECYCLE_EVENT_TYPES as readonly string[]).includes(type);

export const isWebhookEventType = (type: string): boolean => WEBHOOK_EVENT_TYPES.includes(type);

/** How one delivery retries; taken from config at fan-out, kept in the workflow's input. */
export interface DeliveryRetry {
  initialIntervalMs: number;
  maximumIntervalMs: number;
  backoffCoefficient: number;
  /** Retries stop this long after the first attempt. */
  giveUpAfterMs: number;
  /** One attempt's HTTP deadline. */
  timeoutMs: number;
}

/** Ids only: the body and the secrets are read by the activity, never put in history. */
export interface DeliveryInput {
  eventId: string;
  endpointId: string;
  retry: DeliveryRetry;
}

export type DeliveryOutcome =
  | { outcome: 'delivered'; statusCode: number }
  | { outcome: 'skipped'; reason: 'endpoint_deleted' | 'endpoint_disabled' | 'event_deleted' }
  | { outcome: 'gave_up'; reason: string };

/** Failure types of the delivery activity, as the workflow's retry policy names them. */
export const DELIVERY_FAILED = 'WebhookDeliveryFailed';
export const ENDPOINT_BUSY = 'WebhookEndpointBusy';
export const URL_NOT_PUBLIC = 'WebhookUrlNotPublic';

/**
 * One (event, endpoint) fan-out is one workflow, so a repeated Kafka message starts
 * nothing new; a redelivery adds a suffix of its own.
 */
export function deliveryWorkflowId(eventId: string, endpointId: string, suffix?: string): string {
  return `webhook:${eventId}:${endpointId}${suffix ? `:${suffix}` : ''}`;
}

/** The delivery workflow's type name (workflows/webhooks.ts), for starting it by name. */
export const DELIVERY_WORKFLOW = 'webhookDelivery';
