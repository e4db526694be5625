import { ApplicationFailure, Context } from '@temporalio/activity';
import { SCHEMA_VERSION } from '../activities/events';
import type { Config } from '../common/config';
import type { Logger } from '../common/logger';
import {
  DELIVERY_FAILED,
  ENDPOINT_BUSY,
  ENDPOINT_DISABLED_EVENT,
  URL_NOT_PUBLIC,
} from './contract';
import type { DeliveryInput, DeliveryOutcome } from './contract';
import { fanOut } from './fan-out';
import type { FanOutDeps } from './fan-out';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signWebhook } from './signature';
import type { DeliveryTarget, NewEvent, StoredEvent, WebhookStore } from './store';
import { postWebhook } from './transport';

export interface WebhookActivityDeps {
  store: WebhookStore;
  config: Config;
  logger: Logger;
  /** Where the disabled-endpoint event fans out from; the worker's own client by default. */
  workflows?: FanOutDeps['workflows'];
}

const HOUR_MS = 3_600_000;
const USER_AGENT = 'GatewayPayment-Webhooks/1';

/** Attempts in flight per endpoint in this worker, so one endpoint cannot take every slot. */
class EndpointLanes {
  private readonly running = new Map<string, number>();
  constructor(private readonly limit: number) {}

  tryEnter(endpointId: string): boolean {
    const n = this.running.get(endpointId) ?? 0;
    if (n >= this.limit) return false;
    this.running.set(endpointId, n + 1);
    return true;
  }

  leave(endpointId: string): void {
    const n = (this.running.get(endpointId) ?? 1) - 1;
    if (n > 0) this.running.set(endpointId, n);
    else this.running.delete(endpointId);
  }
}

export function createWebhookActivities(deps: WebhookActivityDeps) {
  const { store, config, logger } = deps;
  const lanes = new EndpointLanes(config.WEBHOOK_ENDPOINT_CONCURRENCY);
  const policy = { production: config.NODE_ENV === 'production' };

  /** The event recorded if this failure disables the endpoint. */
  function disabledEvent(endpoint: DeliveryTarget, at: Date): NewEvent {
    const id = `${endpoint.id}:${ENDPOINT_DISABLED_EVENT}:${at.getTime()}`;
    return {
      id,
      merchantId: endpoint.merchantId,
      type: ENDPOINT_DISABLED_EVENT,
      purchaseId: null,
      payload: {
        eventId: id,
        schemaVersion: SCHEMA_VERSION,
        type: ENDPOINT_DISABLED_EVENT,
        occurredAt: at.toISOString(),
        merchantId: endpoint.merchantId,
        data: {
          endpointId: endpoint.id,
          url: endpoint.url,
          failingSince: endpoint.failingSince?.toISOString() ?? at.toISOString(),
        },
      },
    };
  }

  /**
   * Tells the merchant's other endpoints. Best effort: the event is in the log already,
   * and a retry of this attempt would find the endpoint disabled and stop before here.
   */
  async function announce(event: StoredEvent): Promise<void> {
    logger.warn({ eventId: event.id, merchantId: event.merchantId }, 'webhook endpoint disabled');
    const workflows = deps.workflows ?? Context.current().client.workflow;
    await fanOut({ store, workflows, config }, event).catch((err: unknown) =>
      logger.error({ err, eventId: event.id }, 'could not send the endpoint-disabled event'),
    );
  }

  return {
    /**
     * One attempt: sign the stored body, POST it, log the answer. A 2xx is delivered;
     * anything else fails the attempt for Temporal to retry, after the endpoint's failing
     * streak is updated (and the endpoint disabled when the streak is long enough).
     */
    async deliverWebhook(input: DeliveryInput): Promise<DeliveryOutcome> {
      const endpoint = await store.deliveryTarget(input.endpointId);
      if (!endpoint) return { outcome: 'skipped', reason: 'endpoint_deleted' };
      if (endpoint.status !== 'enabled') return { outcome: 'skipped', reason: 'endpoint_disabled' };
      const event = await store.findEvent(input.eventId, endpoint.merchantId);
      if (!event) return { outcome: 'skipped', reason: 'event_deleted' };

      if (!lanes.tryEnter(endpoint.id)) {
        // Fail fast and come back soon: waiting here would hold a slot another merchant needs.
        throw ApplicationFailure.create({
          type: ENDPOINT_BUSY,
          message: `${config.WEBHOOK_ENDPOINT_CONCURRENCY} attempts to this endpoint are in flight`,
          nextRetryDelay: 500 + Math.floor(Math.random() * 1000),
        });
      }
      const body = JSON.stringify(event.payload);
      const workflowId = Context.current().info.workflowExecution?.workflowId ?? '';
      let result;
      try {
        const timestamp = Math.floor(Date.now() / 1000);
        result = await postWebhook(
          new URL(endpoint.url),
          body,
          {
            'content-type': 'application/json',
            'user-agent': USER_AGENT,
            [SIGNATURE_HEADER]: signWebhook(endpoint.secrets, body, timestamp),
            [EVENT_ID_HEADER]: event.id,
            'Gateway-Event-Type': event.type,
          },
          { timeoutMs: config.WEBHOOK_TIMEOUT_MS, policy },
        );
      } finally {
        lanes.leave(endpoint.id);
      }
      const status = result.statusCode;
      const logged = await store.recordAttempt({
        eventId: event.id,
        endpointId: endpoint.id,
        workflowId,
        url: endpoint.url,
        statusCode: result.statusCode ?? null,
        error: result.error ?? null,
        latencyMs: result.latencyMs,
        responseBody: result.body ?? null,
      });
      if (status !== undefined && status >= 200 && status < 300) {
        await store.markSucceeded(endpoint.id);
        return { outcome: 'delivered', statusCode: status };
      }

      const now = new Date();
      const disableAfterMs = config.WEBHOOK_DISABLE_AFTER_HOURS * HOUR_MS;
      const disabled = await store.markFailed(
        endpoint.id,
        now,
        disableAfterMs,
        disabledEvent(endpoint, now),
      );
      if (disabled) await announce(disabled);
      const why = result.error ?? `the endpoint answered ${status}`;
      if (result.refused) {
        throw ApplicationFailure.nonRetryable(why, URL_NOT_PUBLIC);
      }
      throw ApplicationFailure.create({
        type: DELIVERY_FAILED,
        message: `attempt ${logged.attempt}: ${why}`,
      });
    },
  };
}
