import type { WorkflowClient } from '@temporalio/client';
import type { Config } from '../../common/config';
import { decodeCursor, encodeCursor } from '../../common/cursor';
import { conflict, notFound, unavailable, unprocessable } from '../../common/errors';
import { isWebhookEventType, WEBHOOK_EVENT_TYPES } from '../../webhooks/contract';
import { startDelivery } from '../../webhooks/fan-out';
import type { DeliveryAttempt, Endpoint, StoredEvent, WebhookStore } from '../../webhooks/store';
import { checkWebhookHost, parseWebhookUrl, WebhookUrlError } from '../../webhooks/url-policy';
import type { CreateEndpointBody, RedeliverBody } from './request';

export interface WebhookApiDeps {
  store: WebhookStore;
  workflows: Pick<WorkflowClient, 'start'>;
  config: Config;
}

/** Enough for a store's environments and their staging twins; more is a misconfiguration. */
export const MAX_ENDPOINTS_PER_MERCHANT = 16;
const HOUR_MS = 3_600_000;
const DELIVERIES_SHOWN = 100;

export interface EndpointView {
  id: string;
  url: string;
  events: string[];
  status: Endpoint['status'];
  failingSince: string | null;
  disabledAt: string | null;
  /** While set, deliveries are signed with the previous secret too. */
  previousSecretExpiresAt: string | null;
  createdAt: string;
  links: { self: string };
}

const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

function toEndpointView(e: Endpoint): EndpointView {
  return {
    id: e.id,
    url: e.url,
    events: e.events,
    status: e.status,
    failingSince: iso(e.failingSince),
    disabledAt: iso(e.disabledAt),
    previousSecretExpiresAt: iso(e.previousSecretExpiresAt),
    createdAt: e.createdAt.toISOString(),
    links: { self: `/v1/webhook-endpoints/${e.id}` },
  };
}

function toEventView(e: StoredEvent) {
  return {
    id: e.id,
    type: e.type,
    purchaseId: e.purchaseId,
    createdAt: e.createdAt.toISOString(),
    payload: e.payload,
    links: {
      self: `/v1/events/${encodeURIComponent(e.id)}`,
      deliveries: `/v1/events/${encodeURIComponent(e.id)}/deliveries`,
    },
  };
}

function toAttemptView(a: DeliveryAttempt) {
  return {
    id: a.id,
    endpointId: a.endpointId,
    attempt: a.attempt,
    url: a.url,
    statusCode: a.statusCode,
    error: a.error,
    latencyMs: a.latencyMs,
    responseBody: a.responseBody,
    createdAt: a.createdAt.toISOString(),
  };
}

/** The URL, checked as the delivery will check it again: http(s), and a public host in production. */
async function acceptableUrl(config: Config, raw: string): Promise<string> {
  try {
    const url = parseWebhookUrl(raw);
    await checkWebhookHost(url, { production: config.NODE_ENV === 'production' });
    return url.toString();
  } catch (err) {
    if (err instanceof WebhookUrlError) throw unprocessable(err.code, err.message);
    throw err;
  }
}

export async function createEndpoint(
  deps: WebhookApiDeps,
  merchantId: string,
  body: CreateEndpointBody,
): Promise<EndpointView & { secret: string }> {
  const events = [...new Set(body.events)];
  const unknown = events.filter((t) => !isWebhookEventType(t));
  if (unknown.length > 0) {
    throw unprocessable('unknown_event_type', `unknown event type: ${unknown.join(', ')}`, {
      unknown,
      known: WEBHOOK_EVENT_TYPES,
    });
  }
  const url = await acceptableUrl(deps.config, body.url);
  if ((await deps.store.countEndpoints(merchantId)) >= MAX_ENDPOINTS_PER_MERCHANT) {
    throw unprocessable(
      'too_many_webhook_endpoints',
      `a merchant may have at most ${MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints`,
    );
  }
  const { endpoint, secret } = await deps.store.createEndpoint(merchantId, { url, events });
  return { ...toEndpointView(endpoint), secret };
}

export async function listEndpoints(deps: WebhookApiDeps, merchantId: string) {
  return { data: (await deps.store.listEndpoints(merchantId)).map(toEndpointView) };
}

async function merchantEndpoint(deps: WebhookApiDeps, merchantId: string, id: string) {
  const endpoint = await deps.store.findEndpoint(id, merchantId);
  if (!endpoint) throw notFound('webhook endpoint');
  return endpoint;
}

export async function getEndpoint(deps: WebhookApiDeps, merchantId: string, id: string) {
  return toEndpointView(await merchantEndpoint(deps, merchantId, id));
}

export async function deleteEndpoint(deps: WebhookApiDeps, merchantId: string, id: string) {
  if (!(await deps.store.deleteEndpoint(id, merchantId))) throw notFound('webhook endpoint');
}

export async function rotateSecret(deps: WebhookApiDeps, merchantId: string, id: string) {
  const graceMs = deps.config.WEBHOOK_SECRET_GRACE_HOURS * HOUR_MS;
  const rotated = await deps.store.rotateSecret(id, graceMs, merchantId);
  if (!rotated) throw notFound('webhook endpoint');
  return { ...toEndpointView(rotated.endpoint), secret: rotated.secret };
}

/** Newest first, with an opaque cursor over (createdAt, id). */
export async function listEvents(
  deps: WebhookApiDeps,
  merchantId: string,
  query: { limit: number; cursor?: string },
) {
  const after = query.cursor ? decodeCursor(query.cursor) : undefined;
  const rows = await deps.store.listEvents(merchantId, query.limit, after);
  const page = rows.slice(0, query.limit);
  const last = page[page.length - 1];
  return {
    data: page.map(toEventView),
    nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null,
  };
}

async function merchantEvent(deps: WebhookApiDeps, merchantId: string, id: string) {
  const event = await deps.store.findEvent(id, merchantId);
  if (!event) throw notFound('event');
  return event;
}

export async function getEvent(deps: WebhookApiDeps, merchantId: string, id: string) {
  return toEventView(await merchantEvent(deps, merchantId, id));
}

export async function listDeliveries(deps: WebhookApiDeps, merchantId: string, id: string) {
  const event = await merchantEvent(deps, merchantId, id);
  return { data: (await deps.store.listAttempts(event.id, DELIVERIES_SHOWN)).map(toAttemptView) };
}

/**
 * Delivers the event again, as first recorded, to one endpoint or to every enabled
 * endpoint subscribed to its type now. Each is a new delivery with retries of its own.
 */
export async function redeliver(
  deps: WebhookApiDeps,
  merchantId: string,
  id: string,
  body: RedeliverBody,
): Promise<{ eventId: string; endpointIds: string[] }> {
  const event = await merchantEvent(deps, merchantId, id);
  let endpoints: Endpoint[];
  if (body.endpointId) {
    const endpoint = await merchantEndpoint(deps, merchantId, body.endpointId);
    if (endpoint.status !== 'enabled') {
      throw conflict('webhook_endpoint_disabled', 'the webhook endpoint is disabled');
    }
    endpoints = [endpoint];
  } else {
    endpoints = await deps.store.subscribedEndpoints(merchantId, event.type);
  }
  try {
    await Promise.all(
      endpoints.map((e) => startDelivery(deps, event.id, e.id, { redelivery: true })),
    );
  } catch {
    throw unavailable('the delivery engine is unavailable; retry shortly', 5);
  }
  return { eventId: event.id, endpointIds: endpoints.map((e) => e.id) };
}
