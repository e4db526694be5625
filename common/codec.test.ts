import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, METADATA_ENCODING_KEY } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import { EncryptionCodec, KEY_ID_METADATA, openJson, sealJson } from './codec';
import type { PayloadKeys } from './codec';
import { LOCAL_PAYLOAD_KEYS, loadConfig } from './config';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const keys = (active: string, entries: Record<string, Buffer>): PayloadKeys => ({
  PAYLOAD_KEYS: new Map(Object.entries(entries)),
  PAYLOAD_KEY_ID: active,
});

const input = { purchaseId: 'pur_1', token: 'tok_secret_4242' };
const payloadOf = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const valueOf = (payload: Payload | undefined): unknown =>
  defaultPayloadConverter.fromPayload(payload!);
const meta = (payload: Payload | undefined, key: string): string =>
  Buffer.from(payload?.metadata?.[key] ?? []).toString();

test('when a payload is encoded, then its data hides the value and decoding gives it back', async () => {
  const codec = new EncryptionCodec(keys('k1', { k1 }));

  const [encoded] = await codec.encode([payloadOf(input)]);
  const [decoded] = await codec.decode([encoded!]);

  expect(meta(encoded, METADATA_ENCODING_KEY)).toBe('binary/encrypted');
  expect(meta(encoded, KEY_ID_METADATA)).toBe('k1');
  expect(Buffer.from(encoded!.data!).toString('latin1')).not.toContain('tok_secret_4242');
  expect(meta(decoded, METADATA_ENCODING_KEY)).toBe('json/plain');
  expect(valueOf(decoded)).toEqual(input);
});

test('when the same value is encoded twice, then the ciphertexts differ (a fresh iv each time)', async () => {
  const codec = new EncryptionCodec(keys('k1', { k1 }));

  const [a, b] = await codec.encode([payloadOf(input), payloadOf(input)]);

  expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
});

test('when the active key rotates from k1 to k2, then k1 payloads still decode and new ones use k2', async () => {
  const before = new EncryptionCodec(keys('k1', { k1 }));
  const [old] = await before.encode([payloadOf(input)]);

  const after = new EncryptionCodec(keys('k2', { k1, k2 }));
  const [fresh] = await after.encode([payloadOf(input)]);
  const decoded = await after.decode([old!, fresh!]);

  expect(meta(fresh, KEY_ID_METADATA)).toBe('k2');
  expect(decoded.map(valueOf)).toEqual([input, input]);
});

test('when one byte of the ciphertext is flipped, then decoding fails authentication', async () => {
  const codec = new EncryptionCodec(keys('k1', { k1 }));
  const [encoded] = await codec.encode([payloadOf(input)]);
  const data = Buffer.from(encoded!.data!);
  data[14] = data[14]! ^ 0x01;

  await expect(codec.decode([{ ...encoded!, data }])).rejects.toThrow(/failed authentication/);
});

test('when a payload is relabelled with another known key id, then decoding fails', async () => {
  const codec = new EncryptionCodec(keys('k1', { k1, k2 }));
  const [encoded] = await codec.encode([payloadOf(input)]);
  const relabelled = {
    ...encoded!,
    metadata: { ...encoded!.metadata, [KEY_ID_METADATA]: Buffer.from('k2') },
  };

  await expect(codec.decode([relabelled])).rejects.toThrow(/failed authentication/);
});

test('when a payload names a key id that is not configured, then decoding fails naming it', async () => {
  const [encoded] = await new EncryptionCodec(keys('gone', { gone: k1 })).encode([
    payloadOf(input),
  ]);

  const codec = new EncryptionCodec(keys('k2', { k2 }));

  await expect(codec.decode([encoded!])).rejects.toThrow(/no payload key with id gone/);
});

test('when a payload is not encrypted (recorded before the codec), then decoding returns it unchanged', async () => {
  const codec = new EncryptionCodec(keys('k1', { k1 }));
  const plain = payloadOf(input);

  const [decoded] = await codec.decode([plain]);

  expect(decoded).toBe(plain);
});

test('when a JSON value is sealed, then the stored form is base64 strings without the token, and opens to the value', async () => {
  const codec = new EncryptionCodec(keys('k1', { k1 }));

  const sealed = await sealJson(codec, input);
  const opened = await openJson<typeof input>(codec, JSON.parse(JSON.stringify(sealed)));

  expect(JSON.stringify(sealed)).not.toContain('tok_secret_4242');
  expect(Buffer.from(sealed.metadata.encoding!, 'base64').toString()).toBe('binary/encrypted');
  expect(Buffer.from(sealed.metadata[KEY_ID_METADATA]!, 'base64').toString()).toBe('k1');
  expect(opened).toEqual(input);
});

test('when a stored value was written before sealing, then openJson returns it as it is', async () => {
  const codec = new EncryptionCodec(keys('k1', { k1 }));

  await expect(openJson(codec, input)).resolves.toEqual(input);
});

test('when a sealed value was tampered with, then openJson fails', async () => {
  const codec = new EncryptionCodec(keys('k1', { k1 }));
  const sealed = await sealJson(codec, input);
  const data = Buffer.from(sealed.data, 'base64');
  data[20] = data[20]! ^ 0x80;

  await expect(openJson(codec, { ...sealed, data: data.toString('base64') })).rejects.toThrow(
    /failed authentication/,
  );
});

describe('payload key configuration', () => {
  const b64 = (key: Buffer) => key.toString('base64');

  test('when nothing is set, then the local development key is the active one', () => {
    const config = loadConfig({});

    expect(config.PAYLOAD_KEY_ID).toBe('local');
    expect(config.PAYLOAD_KEYS.get('local')).toHaveLength(32);
  });

  test('when several keys are listed, then each is kept under its id', () => {
    const config = loadConfig({
      PAYLOAD_KEYS: `k1:${b64(k1)}, k2:${b64(k2)}`,
      PAYLOAD_KEY_ID: 'k2',
    });

    expect(config.PAYLOAD_KEYS.get('k1')?.equals(k1)).toBe(true);
    expect(config.PAYLOAD_KEYS.get('k2')?.equals(k2)).toBe(true);
  });

  test('when the active key id is not among the keys, then loading fails naming PAYLOAD_KEY_ID', () => {
    expect(() => loadConfig({ PAYLOAD_KEYS: `k1:${b64(k1)}`, PAYLOAD_KEY_ID: 'k2' })).toThrow(
      /PAYLOAD_KEY_ID: must name one of the keys in PAYLOAD_KEYS/,
    );
  });

  test.each([
    ['a key of 16 bytes', `k1:${b64(randomBytes(16))}`],
    ['an entry with no id', b64(k1)],
    ['an id with a space', `k 1:${b64(k1)}`],
  ])('when PAYLOAD_KEYS holds %s, then loading fails without echoing the key', (_, value) => {
    const load = () => loadConfig({ PAYLOAD_KEYS: value, PAYLOAD_KEY_ID: 'k1' });

    expect(load).toThrow(/PAYLOAD_KEYS: entry 1 must be <keyId>:<base64 of 32 bytes>/);
    expect(load).not.toThrow(b64(k1));
  });

  test('when an id is listed twice, then loading fails', () => {
    expect(() =>
      loadConfig({ PAYLOAD_KEYS: `k1:${b64(k1)},k1:${b64(k2)}`, PAYLOAD_KEY_ID: 'k1' }),
    ).toThrow(/key id k1 is listed twice/);
  });

  test('when production leaves PAYLOAD_KEYS at the local default, then it refuses to start', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(
      /PAYLOAD_KEYS: local test keys are refused in production/,
    );
  });

  test('when production lists the local payload key under another id, then it refuses to start', () => {
    const localKey = LOCAL_PAYLOAD_KEYS.slice(LOCAL_PAYLOAD_KEYS.indexOf(':') + 1);

    expect(() =>
      loadConfig({
        NODE_ENV: 'production',
        PAYLOAD_KEYS: `p1:${b64(k1)},old:${localKey}`,
        PAYLOAD_KEY_ID: 'p1',
      }),
    ).toThrow(/PAYLOAD_KEYS: local test keys/);
  });

  test('when production has keys of its own, then it starts', () => {
    expect(() =>
      loadConfig({ NODE_ENV: 'production', PAYLOAD_KEYS: `p1:${b64(k1)}`, PAYLOAD_KEY_ID: 'p1' }),
    ).not.toThrow();
  });

  test('when a codec CORS origin has a path, then loading fails naming CODEC_CORS_ORIGINS', () => {
    expect(() => loadConfig({ CODEC_CORS_ORIGINS: 'http://127.0.0.1:8233/ui' })).toThrow(
      /CODEC_CORS_ORIGINS/,
    );
    expect(loadConfig({}).CODEC_CORS_ORIGINS).toEqual([
      'http://127.0.0.1:8233',
      'http://localhost:8233',
    ]);
  });
});
