/*
 * The webhooks worker's workflows: one delivery of one event to one endpoint. Workflow
 * code: deterministic, no I/O.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type * as webhooks from '../webhooks/activities';
import { URL_NOT_PUBLIC } from '../webhooks/contract';
import type { DeliveryInput, DeliveryOutcome } from '../webhooks/contract';

type Activities = ReturnType<typeof webhooks.createWebhookActivities>;

/**
 * Delivers until the endpoint answers 2xx, the retries' time runs out, or the endpoint
 * goes away. Temporal keeps the backoff, so it survives any worker's crash. Each attempt
 * is one activity with a deadline of its own, so a hanging receiver holds one slot for
 * at most that long, and no other delivery waits behind it.
 */
export async function webhookDelivery(input: DeliveryInput): Promise<DeliveryOutcome> {
  const { retry } = input;
  const { deliverWebhook } = proxyActivities<Activities>({
    // The HTTP deadline plus the database writes around it.
    startToCloseTimeout: retry.timeoutMs + 10_000,
    scheduleToCloseTimeout: retry.giveUpAfterMs,
    retry: {
      initialInterval: retry.initialIntervalMs,
      backoffCoefficient: retry.backoffCoefficient,
      maximumInterval: retry.maximumIntervalMs,
      nonRetryableErrorTypes: [URL_NOT_PUBLIC],
    },
  });
  try {
    return await deliverWebhook(input);
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const cause = err.cause;
    const reason =
      cause instanceof ApplicationFailure
        ? `${cause.type ?? 'Error'}: ${cause.message}`
        : (cause?.message ?? err.message);
    return { outcome: 'gave_up', reason };
  }
}
