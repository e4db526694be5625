import { defaultPayloadConverter } from '@temporalio/common';
import { hashApiKey } from '../common/auth';
import { EncryptionCodec, fromJsonPayload, toJsonPayload } from '../common/codec';
import type { JsonPayload } from '../common/codec';
import { loadConfig } from '../common/config';
import type { PrismaClient } from '../common/db';
import { createHttpApp, listen } from '../common/http';
import { createLogger } from '../common/logger';
import { codecRoutes } from './codec-routes';

const ADMIN = 'sk_admin_test';
const MERCHANT = 'sk_test_merchant';
const UI = 'http://127.0.0.1:8233';

const config = loadConfig({ NODE_ENV: 'test' });
const codec = new EncryptionCodec(config);
const keys = new Map([
  [hashApiKey(ADMIN), { role: 'admin', merchantId: null }],
  [hashApiKey(MERCHANT), { role: 'merchant', merchantId: 'm_1' }],
]);
const prisma = {
  apiKey: {
    findUnique: ({ where }: { where: { keyHash: string } }) =>
      Promise.resolve(keys.get(where.keyHash) ?? null),
  },
} as unknown as PrismaClient;

let base: string;
let close: () => Promise<void>;
beforeAll(async () => {
  const app = createHttpApp(createLogger('t', 'silent'), (a) => {
    a.use('/codec', codecRoutes({ prisma, config }));
  });
  const http = await listen(app, 0);
  base = `http://127.0.0.1:${http.port}/codec`;
  close = http.close;
});
afterAll(() => close());

const sealed = async (value: unknown): Promise<JsonPayload> => {
  const [payload] = await codec.encode([defaultPayloadConverter.toPayload(value)]);
  return toJsonPayload(payload!);
};

// What the Web UI sends: its origin, X-Namespace and a query string of its own.
const call = (path: string, body: unknown, key?: string) =>
  fetch(`${base}${path}?preserveStorageRefs=true`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-namespace': 'default',
      origin: UI,
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    body: JSON.stringify(body),
  });

test('when an admin posts encrypted payloads to /decode, then it answers them decrypted, with CORS for the UI', async () => {
  const res = await call('/decode', { payloads: [await sealed({ token: 'tok_visa' })] }, ADMIN);

  expect(res.status).toBe(200);
  expect(res.headers.get('access-control-allow-origin')).toBe(UI);
  expect(res.headers.get('access-control-allow-credentials')).toBe('true');
  const { payloads } = (await res.json()) as { payloads: JsonPayload[] };
  expect(Buffer.from(payloads[0]!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
  expect(defaultPayloadConverter.fromPayload(fromJsonPayload(payloads[0]!))).toEqual({
    token: 'tok_visa',
  });
});

test('when /encode then /decode is called, then the value comes back and the encoded form hides it', async () => {
  const plain = toJsonPayload(defaultPayloadConverter.toPayload({ token: 'tok_visa' }));

  const encoded = (await (await call('/encode', { payloads: [plain] }, ADMIN)).json()) as {
    payloads: JsonPayload[];
  };
  const decoded = (await (await call('/decode', encoded, ADMIN)).json()) as {
    payloads: JsonPayload[];
  };

  expect(Buffer.from(encoded.payloads[0]!.data, 'base64').toString('latin1')).not.toContain(
    'tok_visa',
  );
  expect(decoded.payloads).toEqual([plain]);
});

test.each([
  ['no key', undefined],
  ['a merchant key', MERCHANT],
  ['an unknown key', 'sk_admin_nope'],
])('when /decode is called with %s, then 401 that the UI can read', async (_, key) => {
  const res = await call('/decode', { payloads: [await sealed({ token: 'tok_visa' })] }, key);

  expect(res.status).toBe(401);
  expect(res.headers.get('access-control-allow-origin')).toBe(UI);
  expect(JSON.stringify(await res.json())).not.toContain('tok_visa');
});

test('when the UI sends its preflight, then it is answered without a key', async () => {
  const res = await fetch(`${base}/decode`, {
    method: 'OPTIONS',
    headers: {
      origin: UI,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type,x-namespace',
    },
  });

  expect(res.status).toBe(204);
  expect(Object.fromEntries(res.headers)).toMatchObject({
    'access-control-allow-origin': UI,
    'access-control-allow-credentials': 'true',
    'access-control-allow-methods': 'POST, OPTIONS',
    'access-control-allow-headers': 'authorization, content-type, x-namespace',
  });
});

test('when a preflight comes from an origin not listed, then it gets no CORS grant', async () => {
  const res = await fetch(`${base}/decode`, {
    method: 'OPTIONS',
    headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' },
  });

  expect(res.status).toBe(204);
  expect(res.headers.get('access-control-allow-origin')).toBeNull();
  expect(res.headers.get('access-control-allow-credentials')).toBeNull();
});

test('when a payload was altered, then /decode answers 400 undecodable_payload', async () => {
  const payload = await sealed({ token: 'tok_visa' });
  const data = Buffer.from(payload.data, 'base64');
  data[15] = data[15]! ^ 0x01;

  const res = await call(
    '/decode',
    { payloads: [{ ...payload, data: data.toString('base64') }] },
    ADMIN,
  );

  expect(res.status).toBe(400);
  expect(await res.json()).toMatchObject({ error: { code: 'undecodable_payload' } });
});

test('when the body is not a list of payloads, then 400 validation_failed', async () => {
  const res = await call('/decode', { payloads: [{ data: 'not base64!' }] }, ADMIN);

  expect(res.status).toBe(400);
  expect(await res.json()).toMatchObject({ error: { code: 'validation_failed' } });
});

const basic = (password: string, user = 'operator') =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const decodeAs = async (authorization: string) =>
  fetch(`${base}/decode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: UI, authorization },
    body: JSON.stringify({ payloads: [await sealed({ token: 'tok_visa' })] }),
  });

test('when the browser sends the admin key as Basic credentials, then /decode answers decrypted', async () => {
  const res = await decodeAs(basic(ADMIN));

  expect(res.status).toBe(200);
  const { payloads } = (await res.json()) as { payloads: JsonPayload[] };
  expect(defaultPayloadConverter.fromPayload(fromJsonPayload(payloads[0]!))).toEqual({
    token: 'tok_visa',
  });
});

test.each([
  ['a wrong key', basic('sk_admin_nope')],
  ['a merchant key', basic(MERCHANT)],
  ['no password', `Basic ${Buffer.from('operator').toString('base64')}`],
])(
  'when Basic credentials carry %s, then /decode is 401 without a challenge',
  async (_, authorization) => {
    const res = await decodeAs(authorization);

    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBeNull();
    expect(JSON.stringify(await res.json())).not.toContain('tok_visa');
  },
);

test.each([
  ['no credentials', undefined],
  ['a merchant key', basic(MERCHANT)],
])('when /login is opened with %s, then 401 asks for Basic credentials', async (_, auth) => {
  const res = await fetch(`${base}/login`, { headers: auth ? { authorization: auth } : {} });

  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toBe('Basic realm="gateway codec", charset="UTF-8"');
});

test('when /login is opened with the admin key as Basic credentials, then the browser is signed in', async () => {
  const res = await fetch(`${base}/login`, { headers: { authorization: basic(ADMIN, '') } });

  expect(res.status).toBe(200);
  expect(res.headers.get('www-authenticate')).toBeNull();
  expect(await res.json()).toMatchObject({ signedIn: true });
});
