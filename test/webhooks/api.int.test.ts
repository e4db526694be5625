import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createApiApp } from '../../api/app';
import { loadConfig } from '../../common/config';
import { listen } from '../../common/http';
import { createLogger } from '../../common/logger';
import type { SearchEngine } from '../../search/engine';
import { MAX_ENDPOINTS_PER_MERCHANT } from '../../api/webhooks/service';
import { idleStarter } from '../purchases/harness';
import { opsCli } from '../purchases/helpers';
import type { WebhookPlatform } from './harness';
import { callApi, startWebhookPlatform } from './harness';

let platform: WebhookPlatform;
let me: { merchantId: string; key: string };
let other: { merchantId: string; key: string };
beforeAll(async () => {
  platform = await startWebhookPlatform();
  me = await platform.newMerchant();
  other = await platform.newMerchant();
});
afterAll(() => platform.close());

const errorOf = (json: Record<string, unknown>) => json.error as { code: string; details: unknown };
const create = (key: string, body: unknown) =>
  platform.call(key, 'POST', '/v1/webhook-endpoints', body);
const good = { url: 'http://127.0.0.1:9/hooks', events: ['payment.approved'] };

/** An event in the merchant's log, as the dispatcher would have recorded it. */
const recordedFor = (merchantId: string, payload: Record<string, unknown> = {}) =>
  platform.store.recordEvent({
    id: `pur_${randomBytes(16).toString('hex')}:payment.approved:1`,
    merchantId,
    type: 'payment.approved',
    purchaseId: null,
    payload,
  });

test('when an endpoint is created, then the secret is shown once and never again', async () => {
  const created = await create(me.key, good);
  const id = created.json.id as string;

  const one = await platform.call(me.key, 'GET', `/v1/webhook-endpoints/${id}`);
  const list = await platform.call(me.key, 'GET', '/v1/webhook-endpoints');

  expect(created.status).toBe(201);
  expect(created.json).toMatchObject({ url: good.url, events: good.events, status: 'enabled' });
  expect(id).toMatch(/^we_[0-9a-f]{32}$/);
  expect(created.json.secret).toMatch(/^whsec_[\w-]{43}$/);
  expect(one.status).toBe(200);
  expect(one.json).not.toHaveProperty('secret');
  expect((list.json.data as { id: string }[]).map((e) => e.id)).toContain(id);
  expect(JSON.stringify(list.json)).not.toContain(created.json.secret as string);
  // Sealed at rest: the row does not hold the secret in clear either.
  const row = await platform.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id } });
  expect(JSON.stringify(row)).not.toContain(created.json.secret as string);
});

test('when an endpoint is deleted, then it is gone', async () => {
  const id = (await create(me.key, good)).json.id as string;

  const deleted = await platform.call(me.key, 'DELETE', `/v1/webhook-endpoints/${id}`);
  const again = await platform.call(me.key, 'DELETE', `/v1/webhook-endpoints/${id}`);
  const read = await platform.call(me.key, 'GET', `/v1/webhook-endpoints/${id}`);

  expect(deleted.status).toBe(204);
  expect(again.status).toBe(404);
  expect(read.status).toBe(404);
});

test.each([
  ['no url', { events: ['payment.approved'] }],
  ['no events', { url: good.url }],
  ['an empty events list', { url: good.url, events: [] }],
  ['a url that is not a string', { url: 42, events: ['payment.approved'] }],
  ['an event type that is not a string', { url: good.url, events: [1] }],
  ['an unknown field', { ...good, secret: 'mine' }],
  ['a url over 2048 characters', { ...good, url: `https://example.com/${'a'.repeat(2048)}` }],
  ['an array body', [good]],
])('when the body has %s, then 400 validation_failed', async (_n, body) => {
  const res = await create(me.key, body);

  expect(res.status).toBe(400);
  expect(errorOf(res.json).code).toBe('validation_failed');
});

test('when the body is not JSON, then 400 malformed_json', async () => {
  const res = await callApi(
    platform.apiUrl,
    me.key,
    'POST',
    '/v1/webhook-endpoints',
    undefined,
    '{"url":',
  );

  expect(res.status).toBe(400);
  expect(errorOf(res.json).code).toBe('malformed_json');
});

test.each([
  ['ftp', 'ftp://127.0.0.1/hooks'],
  ['javascript', 'javascript:alert(1)'],
  ['a relative path', '/hooks'],
  ['credentials', 'http://user:pw@127.0.0.1/hooks'],
])('when the url is %s, then 422 invalid_webhook_url', async (_n, url) => {
  const res = await create(me.key, { ...good, url });

  expect(res.status).toBe(422);
  expect(errorOf(res.json).code).toBe('invalid_webhook_url');
});

test('when outside production the url is private, then 422 webhook_url_not_public; loopback is allowed', async () => {
  const privateUrl = await create(me.key, { ...good, url: 'http://10.0.0.1/hooks' });
  const loopback = await create(me.key, { ...good, url: 'http://localhost:9/hooks' });

  expect(privateUrl.status).toBe(422);
  expect(errorOf(privateUrl.json).code).toBe('webhook_url_not_public');
  expect(loopback.status).toBe(201);
});

test('when an event type is unknown, then 422 unknown_event_type names it', async () => {
  const res = await create(me.key, { ...good, events: ['payment.approved', 'payment.teleported'] });

  expect(res.status).toBe(422);
  expect(errorOf(res.json)).toMatchObject({
    code: 'unknown_event_type',
    details: { unknown: ['payment.teleported'] },
  });
});

test('when a merchant has the most endpoints allowed, then one more is 422', async () => {
  const crowded = await platform.newMerchant();
  for (let i = 0; i < MAX_ENDPOINTS_PER_MERCHANT; i++) {
    expect((await create(crowded.key, good)).status).toBe(201);
  }

  const res = await create(crowded.key, good);

  expect(res.status).toBe(422);
  expect(errorOf(res.json).code).toBe('too_many_webhook_endpoints');
});

test("when a merchant names another merchant's endpoint or event, then 404", async () => {
  const theirs = (await create(other.key, good)).json.id as string;
  const theirEvent = await recordedFor(other.merchantId);
  const event = encodeURIComponent(theirEvent.id);

  const answers = await Promise.all([
    platform.call(me.key, 'GET', `/v1/webhook-endpoints/${theirs}`),
    platform.call(me.key, 'DELETE', `/v1/webhook-endpoints/${theirs}`),
    platform.call(me.key, 'POST', `/v1/webhook-endpoints/${theirs}/rotate-secret`),
    platform.call(me.key, 'GET', `/v1/events/${event}`),
    platform.call(me.key, 'GET', `/v1/events/${event}/deliveries`),
    platform.call(me.key, 'POST', `/v1/events/${event}/redeliver`),
  ]);

  expect(answers.map((a) => [a.status, errorOf(a.json).code])).toEqual(
    Array(6).fill([404, 'not_found']),
  );
  // Theirs is untouched.
  expect((await platform.call(other.key, 'GET', `/v1/webhook-endpoints/${theirs}`)).status).toBe(
    200,
  );
  const mine = (await create(me.key, good)).json.id as string;
  const ownEvent = await recordedFor(me.merchantId);
  const crossed = await platform.call(
    me.key,
    'POST',
    `/v1/events/${encodeURIComponent(ownEvent.id)}/redeliver`,
    { endpointId: theirs },
  );
  expect(crossed.status).toBe(404);
  expect(mine).toMatch(/^we_/);
});

test.each([
  ['GET', '/v1/webhook-endpoints/we_nope', 'invalid_webhook_endpoint_id'],
  ['DELETE', '/v1/webhook-endpoints/123', 'invalid_webhook_endpoint_id'],
  ['POST', '/v1/webhook-endpoints/x/rotate-secret', 'invalid_webhook_endpoint_id'],
  ['GET', `/v1/events/${encodeURIComponent('a b')}`, 'invalid_event_id'],
  ['GET', '/v1/events?cursor=bm9wZQ', 'invalid_cursor'],
  ['GET', '/v1/events?limit=0', 'validation_failed'],
  ['GET', '/v1/events?limit=101', 'validation_failed'],
  ['GET', '/v1/events?type=x', 'validation_failed'],
])('when %s %s is malformed, then 400 %s', async (method, path, code) => {
  const res = await platform.call(me.key, method, path);

  expect(res.status).toBe(400);
  expect(errorOf(res.json).code).toBe(code);
});

test('when a rotation or a redelivery carries an unexpected body, then 400', async () => {
  const id = (await create(me.key, good)).json.id as string;
  const event = await recordedFor(me.merchantId);
  const redeliver = `/v1/events/${encodeURIComponent(event.id)}/redeliver`;

  const rotate = await platform.call(me.key, 'POST', `/v1/webhook-endpoints/${id}/rotate-secret`, {
    grace: 1,
  });
  const badId = await platform.call(me.key, 'POST', redeliver, { endpointId: 'we_x' });
  const extra = await platform.call(me.key, 'POST', redeliver, { endpointId: id, now: true });
  const unknown = await platform.call(me.key, 'POST', redeliver, {
    endpointId: `we_${'0'.repeat(32)}`,
  });

  expect([rotate.status, badId.status, extra.status]).toEqual([400, 400, 400]);
  expect(unknown.status).toBe(404);
});

test('when the key is missing or an admin key, then 401', async () => {
  const none = await fetch(`${platform.apiUrl}/v1/webhook-endpoints`);
  const admin = await platform.call('sk_admin_local', 'GET', '/v1/events');

  expect(none.status).toBe(401);
  expect(admin.status).toBe(401);
});

test('when the events list is paged, then it runs newest first through an opaque cursor', async () => {
  const pager = await platform.newMerchant();
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const e = await recordedFor(pager.merchantId, { n: i });
    ids.push(e.id);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }

  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
    const page = await platform.call(pager.key, 'GET', `/v1/events${query}`);
    seen.push(...(page.json.data as { id: string }[]).map((e) => e.id));
    cursor = page.json.nextCursor as string | null;
  } while (cursor);

  expect(seen).toEqual([...ids].reverse());
});

describe('in production', () => {
  let close: () => Promise<void>;
  let apiUrl = '';
  beforeAll(async () => {
    // Production refuses the local payload key, so it runs under a key of its own.
    const config = loadConfig({
      NODE_ENV: 'production',
      LOG_LEVEL: 'silent',
      PAYLOAD_KEYS: `prod:${randomBytes(32).toString('base64')}`,
      PAYLOAD_KEY_ID: 'prod',
    });
    const api = await listen(
      createApiApp({
        prisma: platform.prisma,
        sql: undefined as never,
        starter: idleStarter(config),
        config,
        logger: createLogger('test', 'silent'),
        search: {} as Pick<SearchEngine, 'searchPurchases'>,
        workflows: platform.client.workflow,
      }),
      0,
    );
    apiUrl = `http://127.0.0.1:${api.port}`;
    close = api.close;
  });
  afterAll(() => close());

  test('when the url is a public address, then it is accepted', async () => {
    const res = await callApi(apiUrl, me.key, 'POST', '/v1/webhook-endpoints', {
      ...good,
      url: 'https://8.8.8.8/hooks',
    });

    expect(res.status).toBe(201);
  });

  test.each([
    'http://127.0.0.1:9/hooks',
    'http://localhost:9/hooks',
    'http://[::1]/hooks',
    'http://10.1.2.3/hooks',
    'http://192.168.0.10/hooks',
    'http://172.20.0.5/hooks',
    'http://169.254.169.254/latest/meta-data',
    'http://[fd00::1]/hooks',
    'http://[fe80::1]/hooks',
  ])('when the url is %s, then 422 webhook_url_not_public', async (url) => {
    const res = await callApi(apiUrl, me.key, 'POST', '/v1/webhook-endpoints', { ...good, url });

    expect(res.status).toBe(422);
    expect(errorOf(res.json).code).toBe('webhook_url_not_public');
  });
});

test('when the built package is required by name, then verifyWebhook is its export', async () => {
  // `npm run build` first, as for the ops CLI tests; node resolves the package's own name.
  const { stdout } = await promisify(execFile)(process.execPath, [
    '-e',
    "const w = require('gateway-payment'); console.log(typeof w.verifyWebhook, typeof w.signWebhook)",
  ]);

  expect(stdout.trim()).toBe('function function');
});

test('when an operator rotates and enables an endpoint with the ops CLI, then the api shows it', async () => {
  // The compiled CLI (`npm run build`), against the same database.
  const id = (await create(me.key, good)).json.id as string;
  await platform.prisma.webhookEndpoint.update({
    where: { id },
    data: { status: 'disabled', disabledAt: new Date(), failingSince: new Date() },
  });

  const secret = (await opsCli('webhooks', 'rotate-secret', id)).trim();
  await opsCli('webhooks', 'enable', id);

  expect(secret).toMatch(/^whsec_/);
  const shown = await platform.call(me.key, 'GET', `/v1/webhook-endpoints/${id}`);
  expect(shown.json).toMatchObject({ status: 'enabled', failingSince: null, disabledAt: null });
  expect(shown.json.previousSecretExpiresAt).not.toBeNull();
  await expect(opsCli('webhooks', 'enable', `we_${'0'.repeat(32)}`)).rejects.toThrow(/not found/);
});
