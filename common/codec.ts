import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { defaultPayloadConverter, METADATA_ENCODING_KEY, ValueError } from '@temporalio/common';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Config } from './config';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export type PayloadKeys = Pick<Config, 'PAYLOAD_KEYS' | 'PAYLOAD_KEY_ID'>;

const text = (bytes: Uint8Array | null | undefined): string | undefined =>
  bytes ? Buffer.from(bytes).toString('utf8') : undefined;

/**
 * AES-256-GCM over the whole original payload (its protobuf bytes, so its own metadata
 * such as `json/plain` comes back on decode). The encrypted payload's data is
 * iv (12 random bytes) || ciphertext || tag (16 bytes); the key id is bound in as
 * additional authenticated data, so relabelling a payload with another key id fails too.
 */
export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keys: PayloadKeys) {}

  // The work is synchronous; the Promise constructor turns a throw into a rejection.
  encode(payloads: Payload[]): Promise<Payload[]> {
    return new Promise((resolve) => resolve(payloads.map((p) => this.encodeOne(p))));
  }

  /** Payloads that are not encrypted (histories from before the codec) pass through. */
  decode(payloads: Payload[]): Promise<Payload[]> {
    return new Promise((resolve) => resolve(payloads.map((p) => this.decodeOne(p))));
  }

  private encodeOne(payload: Payload): Payload {
    const keyId = this.keys.PAYLOAD_KEY_ID;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keyFor(keyId), iv).setAAD(Buffer.from(keyId));
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    return {
      metadata: {
        [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING),
        [KEY_ID_METADATA]: Buffer.from(keyId),
      },
      data: Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]),
    };
  }

  private decodeOne(payload: Payload): Payload {
    if (text(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload;
    const keyId = text(payload.metadata?.[KEY_ID_METADATA]);
    if (!keyId) throw new ValueError(`an encrypted payload has no ${KEY_ID_METADATA}`);
    const key = this.keyFor(keyId);
    const data = Buffer.from(payload.data ?? []);
    if (data.length < IV_BYTES + TAG_BYTES) {
      throw new ValueError(`an encrypted payload under key ${keyId} is too short`);
    }
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES))
      .setAAD(Buffer.from(keyId))
      .setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new ValueError(`an encrypted payload under key ${keyId} failed authentication`);
    }
    return temporal.api.common.v1.Payload.decode(plain);
  }

  private keyFor(keyId: string): Buffer {
    const key = this.keys.PAYLOAD_KEYS.get(keyId);
    if (!key) {
      throw new ValueError(
        `no payload key with id ${keyId}: add it to PAYLOAD_KEYS to read payloads encrypted with it`,
      );
    }
    return key;
  }
}

/** The data converter every Temporal client and worker of this project uses. */
export function dataConverterFor(keys: PayloadKeys): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(keys)] };
}

/** A payload in JSON, as Temporal's codec-server protocol writes one: every byte string in base64. */
export type JsonPayload = { metadata: Record<string, string>; data: string };

export function toJsonPayload(payload: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(payload.metadata ?? {})) {
    metadata[k] = Buffer.from(v).toString('base64');
  }
  return { metadata, data: Buffer.from(payload.data ?? []).toString('base64') };
}

export function fromJsonPayload(json: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(json.metadata)) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(json.data, 'base64') };
}

const isJsonPayload = (value: unknown): value is JsonPayload => {
  if (typeof value !== 'object' || value === null) return false;
  const { metadata, data } = value as Record<string, unknown>;
  return (
    typeof data === 'string' &&
    typeof metadata === 'object' &&
    metadata !== null &&
    typeof (metadata as Record<string, unknown>)[METADATA_ENCODING_KEY] === 'string'
  );
};

/**
 * A JSON value sealed by the codec, for storing outside Temporal (the outbox's input).
 * The result is plain JSON of strings, fit for a JSON column.
 */
export async function sealJson(codec: PayloadCodec, value: unknown): Promise<JsonPayload> {
  const [sealed] = await codec.encode([defaultPayloadConverter.toPayload(value)]);
  if (!sealed) throw new ValueError('the codec returned no payload');
  return toJsonPayload(sealed);
}

/**
 * The value `sealJson` sealed. A stored value that is not a sealed payload (a row written
 * before sealing) is returned as it is.
 */
export async function openJson<T>(codec: PayloadCodec, stored: unknown): Promise<T> {
  if (!isJsonPayload(stored)) return stored as T;
  const [opened] = await codec.decode([fromJsonPayload(stored)]);
  if (!opened) throw new ValueError('the codec returned no payload');
  return defaultPayloadConverter.fromPayload<T>(opened);
}
