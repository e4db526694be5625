import { deliveryWorkflowId } from '../../webhooks/contract';
import type { webhookDelivery } from '../../workflows/webhooks';
import { EVENT_ID_HEADER } from '../../webhooks/signature';
import { eventually } from '../config';
import type { Receiver, WebhookPlatform } from './harness';
import { payloadOf, startReceiver, startWebhookPlatform, untilReceived } from './harness';

let platform: WebhookPlatform;
const receivers: Receiver[] = [];
beforeAll(async () => {
  platform = await startWebhookPlatform({
    // An endpoint failing for 3.6 s is disabled, so the disabling case runs in seconds.
    WEBHOOK_DISABLE_AFTER_HOURS: '0.001',
    WEBHOOK_TIMEOUT_MS: '3000',
    // Few slots and a narrow lane per endpoint, so the hanging case can starve the worker
    // if the lane does not hold.
    WEBHOOK_ACTIVITY_SLOTS: '4',
    WEBHOOK_ENDPOINT_CONCURRENCY: '2',
  });
});
afterAll(async () => {
  await platform.close();
  await Promise.all(receivers.map((r) => r.close()));
});

async function receiver(answer?: (n: number) => number | 'hang'): Promise<Receiver> {
  const r = await startReceiver(answer);
  receivers.push(r);
  return r;
}

/** A merchant with one endpoint at `r` for `events`; the receiver learns its secret. */
async function subscribed(r: Receiver, events = ['payment.approved']) {
  const merchant = await platform.newMerchant();
  const created = await platform.call(merchant.key, 'POST', '/v1/webhook-endpoints', {
    url: r.url,
    events,
  });
  expect(created.status).toBe(201);
  r.secrets = [created.json.secret as string];
  return { ...merchant, endpointId: created.json.id as string };
}

const deliveriesOf = async (key: string, eventId: string) =>
  (await platform.call(key, 'GET', `/v1/events/${encodeURIComponent(eventId)}/deliveries`)).json
    .data as { attempt: number; statusCode: number | null; error: string | null }[];

test('when an event is published for a subscribed merchant, then the receiver gets it signed, with the event logged', async () => {
  const r = await receiver();
  const { merchantId, key, endpointId } = await subscribed(r);

  const eventId = await platform.publishEvent(merchantId, 'payment.approved', { chargeId: 'ch_1' });

  await untilReceived(r, 1);
  const [got] = r.received;
  expect(got?.verified).toBe(true);
  expect(got?.headers[EVENT_ID_HEADER.toLowerCase()]).toBe(eventId);
  expect(payloadOf(got!)).toMatchObject({
    eventId,
    type: 'payment.approved',
    merchantId,
    data: { chargeId: 'ch_1' },
    // No purchase row behind a hand-published envelope.
    purchase: null,
  });
  const listed = await platform.call(key, 'GET', '/v1/events');
  expect((listed.json.data as { id: string }[]).map((e) => e.id)).toEqual([eventId]);
  const log = await eventually(async () => {
    const d = await deliveriesOf(key, eventId);
    return d.length === 1 ? d : undefined;
  });
  expect(log[0]).toMatchObject({
    endpointId,
    attempt: 1,
    statusCode: 200,
    error: null,
    responseBody: 'answered 200',
  });
});

test('when the merchant is not subscribed to the type, then nothing is delivered but the event is logged', async () => {
  const r = await receiver();
  const { merchantId, key } = await subscribed(r, ['payment.declined']);

  const eventId = await platform.publishEvent(merchantId, 'payment.approved');

  const event = await eventually(async () => {
    const res = await platform.call(key, 'GET', `/v1/events/${encodeURIComponent(eventId)}`);
    return res.status === 200 ? res.json : undefined;
  });
  expect(event.type).toBe('payment.approved');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  expect(r.received).toEqual([]);
});

test('when a type outside the webhook list is published, then it is neither logged nor delivered', async () => {
  const r = await receiver();
  const { merchantId, key } = await subscribed(r);

  const internal = await platform.publishEvent(merchantId, 'purchase.requested');
  const marker = await platform.publishEvent(merchantId, 'payment.approved');

  await untilReceived(r, 1);
  const listed = (await platform.call(key, 'GET', '/v1/events')).json.data as { id: string }[];
  expect(listed.map((e) => e.id)).toEqual([marker]);
  expect(listed.map((e) => e.id)).not.toContain(internal);
});

test('when the receiver answers 500 twice and then 200, then the event arrives on the third attempt', async () => {
  const r = await receiver((n) => (n <= 2 ? 500 : 200));
  const { merchantId, key, endpointId } = await subscribed(r);

  const eventId = await platform.publishEvent(merchantId, 'payment.approved');

  await untilReceived(r, 3);
  expect(r.received.every((x) => x.verified === true)).toBe(true);
  expect(new Set(r.received.map((x) => x.headers[EVENT_ID_HEADER.toLowerCase()]))).toEqual(
    new Set([eventId]),
  );
  const log = await eventually(async () => {
    const d = await deliveriesOf(key, eventId);
    return d.length === 3 ? d : undefined;
  });
  expect(log.map((d) => [d.attempt, d.statusCode])).toEqual([
    [3, 200],
    [2, 500],
    [1, 500],
  ]);
  // The success ended the failing streak.
  const endpoint = await platform.call(key, 'GET', `/v1/webhook-endpoints/${endpointId}`);
  expect(endpoint.json).toMatchObject({ status: 'enabled', failingSince: null });
});

test("when one merchant's receiver hangs on more events than the worker has slots, then another merchant's event is delivered at once", async () => {
  const hanging = await receiver(() => 'hang');
  const slow = await subscribed(hanging);
  const quick = await receiver();
  const other = await subscribed(quick);

  for (let i = 0; i < 5; i++) await platform.publishEvent(slow.merchantId, 'payment.approved');
  await untilReceived(hanging, 2);
  // Time for the other three to be tried: they are turned back, not left holding slots.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const published = Date.now();
  await platform.publishEvent(other.merchantId, 'payment.approved');

  await untilReceived(quick, 1);
  // Well inside the 3 s a hanging attempt holds its slot.
  expect(quick.received[0]!.at - published).toBeLessThan(2000);
  expect(hanging.received.length).toBe(2);
  // A hanging attempt is cut off at the timeout and logged as such.
  const cutOff = await eventually(
    async () =>
      (await platform.prisma.webhookDelivery.findFirst({
        where: { endpointId: slow.endpointId },
      })) ?? undefined,
  );
  expect(cutOff).toMatchObject({ statusCode: null, error: 'no answer within 3000 ms' });
});

test('when an event is redelivered, then every subscribed endpoint, or the one named, gets it again', async () => {
  const r = await receiver();
  const { merchantId, key, endpointId } = await subscribed(r);
  const eventId = await platform.publishEvent(merchantId, 'payment.approved');
  await untilReceived(r, 1);
  const path = `/v1/events/${encodeURIComponent(eventId)}/redeliver`;

  const all = await platform.call(key, 'POST', path);
  await untilReceived(r, 2);
  const one = await platform.call(key, 'POST', path, { endpointId });
  await untilReceived(r, 3);

  expect(all).toMatchObject({ status: 202, json: { eventId, endpointIds: [endpointId] } });
  expect(one).toMatchObject({ status: 202, json: { eventId, endpointIds: [endpointId] } });
  // The same body each time; each is signed afresh.
  expect(new Set(r.received.map((x) => x.body)).size).toBe(1);
  expect(r.received.every((x) => x.verified === true)).toBe(true);
  const log = await eventually(async () => {
    const d = await deliveriesOf(key, eventId);
    return d.length === 3 ? d : undefined;
  });
  expect(log.map((d) => d.attempt)).toEqual([3, 2, 1]);
});

test('when the secret is rotated, then deliveries in the grace carry both signatures, each valid', async () => {
  const r = await receiver();
  const { merchantId, key, endpointId } = await subscribed(r);
  const oldSecret = r.secrets[0]!;

  const rotated = await platform.call(
    key,
    'POST',
    `/v1/webhook-endpoints/${endpointId}/rotate-secret`,
  );
  const newSecret = rotated.json.secret as string;
  r.secrets = [newSecret, oldSecret];
  await platform.publishEvent(merchantId, 'payment.approved');
  await untilReceived(r, 1);

  expect(rotated.status).toBe(200);
  expect(newSecret).toMatch(/^whsec_/);
  expect(newSecret).not.toBe(oldSecret);
  expect(Date.parse(rotated.json.previousSecretExpiresAt as string) - Date.now()).toBeGreaterThan(
    23 * 3_600_000,
  );
  const [got] = r.received;
  const header = got!.headers['gateway-signature'] as string;
  expect(header.split(',').filter((p) => p.startsWith('v1='))).toHaveLength(2);
  expect(got!.verifiedBy).toEqual([true, true]);
  const shown = await platform.call(key, 'GET', `/v1/webhook-endpoints/${endpointId}`);
  expect(shown.json).not.toHaveProperty('secret');
});

test('when an endpoint keeps failing past the disable window, then it is disabled and a disabled event is recorded and sent to the other endpoints', async () => {
  const failing = await receiver(() => 503);
  const { merchantId, key, endpointId } = await subscribed(failing);
  const watcher = await receiver();
  const watch = await platform.call(key, 'POST', '/v1/webhook-endpoints', {
    url: watcher.url,
    events: ['webhook_endpoint.disabled'],
  });
  watcher.secrets = [watch.json.secret as string];

  await platform.publishEvent(merchantId, 'payment.approved');

  const endpoint = await eventually(async () => {
    const res = await platform.call(key, 'GET', `/v1/webhook-endpoints/${endpointId}`);
    return res.json.status === 'disabled' ? res.json : undefined;
  }, 30000);
  expect(endpoint.disabledAt).not.toBeNull();
  const events = (await platform.call(key, 'GET', '/v1/events')).json.data as {
    type: string;
    payload: { data: { endpointId: string } };
  }[];
  expect(events[0]).toMatchObject({
    type: 'webhook_endpoint.disabled',
    payload: { data: { endpointId } },
  });
  await untilReceived(watcher, 1);
  expect(watcher.received[0]!.verified).toBe(true);
  expect(payloadOf(watcher.received[0]!)).toMatchObject({ type: 'webhook_endpoint.disabled' });
  // Retries stop once it is disabled.
  const attempts = failing.received.length;
  await new Promise((resolve) => setTimeout(resolve, 2000));
  expect(failing.received.length).toBeLessThanOrEqual(attempts + 1);
});

test('when an endpoint URL is not public at delivery time, then the attempt is refused, logged and not retried', async () => {
  // As if its name had been re-pointed at the internal network after registration.
  const { merchantId, key } = await platform.newMerchant();
  const { endpoint } = await platform.store.createEndpoint(merchantId, {
    url: 'http://10.0.0.1/hooks',
    events: ['payment.approved'],
  });

  const eventId = await platform.publishEvent(merchantId, 'payment.approved');

  const outcome = await eventually(() =>
    platform.client.workflow
      .getHandle<typeof webhookDelivery>(deliveryWorkflowId(eventId, endpoint.id))
      .result(),
  );
  expect(outcome.outcome).toBe('gave_up');
  expect(outcome.outcome === 'gave_up' && outcome.reason).toMatch(/^WebhookUrlNotPublic: /);
  const log = await deliveriesOf(key, eventId);
  expect(log).toHaveLength(1);
  expect(log[0]).toMatchObject({ statusCode: null, latencyMs: 0 });
  expect(log[0]!.error).toMatch(/10\.0\.0\.1, which is not a public internet address/);
});
