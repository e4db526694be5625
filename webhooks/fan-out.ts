import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { WorkflowClient } from '@temporalio/client';
import type { Config } from '../common/config';
import type { webhookDelivery } from '../workflows/webhooks';
import { DELIVERY_WORKFLOW, deliveryWorkflowId } from './contract';
import type { DeliveryRetry } from './contract';
import type { Endpoint, StoredEvent, WebhookStore } from './store';

export interface FanOutDeps {
  store: Pick<WebhookStore, 'subscribedEndpoints'>;
  workflows: Pick<WorkflowClient, 'start'>;
  config: Pick<
    Config,
    | 'WEBHOOKS_TASK_QUEUE'
    | 'WEBHOOK_TIMEOUT_MS'
    | 'WEBHOOK_RETRY_INITIAL_MS'
    | 'WEBHOOK_RETRY_MAX_INTERVAL_MS'
    | 'WEBHOOK_RETRY_HOURS'
  >;
}

const HOUR_MS = 3_600_000;

export function deliveryRetry(config: FanOutDeps['config']): DeliveryRetry {
  return {
    initialIntervalMs: config.WEBHOOK_RETRY_INITIAL_MS,
    maximumIntervalMs: config.WEBHOOK_RETRY_MAX_INTERVAL_MS,
    backoffCoefficient: 2,
    giveUpAfterMs: Math.round(config.WEBHOOK_RETRY_HOURS * HOUR_MS),
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
  };
}

/**
 * Starts the delivery of `eventId` to `endpointId`. Without a suffix the workflow id is
 * the pair's own, and a second start, of a running or a finished delivery, starts
 * nothing: a Kafka message seen twice is delivered once.
 */
export async function startDelivery(
  deps: Omit<FanOutDeps, 'store'>,
  eventId: string,
  endpointId: string,
  options: { redelivery?: boolean } = {},
): Promise<string> {
  const suffix = options.redelivery ? `redeliver-${randomUUID().slice(0, 8)}` : undefined;
  const workflowId = deliveryWorkflowId(eventId, endpointId, suffix);
  try {
    await deps.workflows.start<typeof webhookDelivery>(DELIVERY_WORKFLOW, {
      taskQueue: deps.config.WEBHOOKS_TASK_QUEUE,
      workflowId,
      args: [{ eventId, endpointId, retry: deliveryRetry(deps.config) }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  return workflowId;
}

/** One delivery per enabled endpoint of the event's merchant subscribed to its type. */
export async function fanOut(
  deps: FanOutDeps,
  event: Pick<StoredEvent, 'id' | 'merchantId' | 'type'>,
): Promise<Endpoint[]> {
  const endpoints = await deps.store.subscribedEndpoints(event.merchantId, event.type);
  await Promise.all(endpoints.map((e) => startDelivery(deps, event.id, e.id)));
  return endpoints;
}
