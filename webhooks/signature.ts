import { createHmac, timingSafeEqual } from 'node:crypto';

/*
 * How a webhook proves it came from the gateway. The header is
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`; while an endpoint's old secret
 * is still in its grace period after a rotation, the header carries one v1 per secret, so
 * a receiver holding either verifies. This file is the package's entry point
 * (package.json `main`): receivers import it, so it depends on nothing but node:crypto.
 */

export const SIGNATURE_HEADER = 'Gateway-Signature';
/** The event's id, for the receiver's dedup: every attempt and redelivery carries the same. */
export const EVENT_ID_HEADER = 'Gateway-Event-Id';
export const DEFAULT_TOLERANCE_SECONDS = 300;

const SCHEME = 'v1';
const HEX_DIGEST = /^[0-9a-f]{64}$/;

function digest(secret: string, timestamp: number, body: string | Buffer): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

/**
 * The header value for `body` at `timestampSeconds`: one v1 value per secret given, the
 * current secret first.
 */
export function signWebhook(
  secret: string | readonly string[],
  body: string | Buffer,
  timestampSeconds: number,
): string {
  const secrets = typeof secret === 'string' ? [secret] : secret;
  if (secrets.length === 0) throw new TypeError('at least one secret is needed to sign');
  if (!Number.isSafeInteger(timestampSeconds)) {
    throw new TypeError('the timestamp must be whole unix seconds');
  }
  const values = secrets.map(
    (s) => `${SCHEME}=${digest(s, timestampSeconds, body).toString('hex')}`,
  );
  return [`t=${timestampSeconds}`, ...values].join(',');
}

/** Why a signature was refused; stable strings a receiver may log or branch on. */
export type VerificationReason =
  'no_secret' | 'malformed_header' | 'timestamp_outside_tolerance' | 'signature_mismatch';

export class WebhookVerificationError extends Error {
  constructor(
    readonly reason: VerificationReason,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

export interface VerifyOptions {
  /** The endpoint's secret (`whsec_…`); during a rotation, pass both in `secrets`. */
  secret?: string;
  secrets?: readonly string[];
  /** The Gateway-Signature header as received. */
  header: string | undefined | null;
  /** The raw request body, byte for byte: a re-serialised JSON object will not verify. */
  body: string | Buffer;
  toleranceSeconds?: number;
  /** The receiver's clock; defaults to now. */
  now?: Date;
}

/** The header's timestamp and v1 digests, or undefined when it is not one we write. */
function parseHeader(header: string): { timestamp: number; digests: Buffer[] } | undefined {
  let timestamp: number | undefined;
  const digests: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,12}$/.test(value)) return undefined;
      timestamp = Number(value);
    } else if (key === SCHEME) {
      if (!HEX_DIGEST.test(value)) return undefined;
      digests.push(Buffer.from(value, 'hex'));
    }
    // Other schemes are skipped, so a later scheme can be added beside v1.
  }
  if (timestamp === undefined || digests.length === 0) return undefined;
  return { timestamp, digests };
}

/**
 * Returns true when `header` signs `body` under one of the secrets within the tolerance;
 * otherwise throws a WebhookVerificationError whose `reason` says why. Every digest is
 * compared in constant time against every secret, so timing tells nothing about which
 * byte differed.
 */
export function verifyWebhook(options: VerifyOptions): true {
  const secrets = [...(options.secrets ?? []), ...(options.secret ? [options.secret] : [])].filter(
    (s) => s.length > 0,
  );
  if (secrets.length === 0) {
    throw new WebhookVerificationError('no_secret', 'no secret was given to verify with');
  }
  const parsed = options.header ? parseHeader(options.header) : undefined;
  if (!parsed) {
    throw new WebhookVerificationError(
      'malformed_header',
      `the ${SIGNATURE_HEADER} header is missing or not t=<seconds>,v1=<hex>`,
    );
  }
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  // Both ways: a timestamp far in the future is as suspect as an old one.
  if (Math.abs(nowSeconds - parsed.timestamp) > tolerance) {
    throw new WebhookVerificationError(
      'timestamp_outside_tolerance',
      `the signature's timestamp is more than ${tolerance} s from now`,
    );
  }
  let matched = false;
  for (const secret of secrets) {
    const expected = digest(secret, parsed.timestamp, options.body);
    for (const received of parsed.digests) {
      // No early exit: the work done is the same whichever pair matches.
      if (timingSafeEqual(expected, received)) matched = true;
    }
  }
  if (!matched) {
    throw new WebhookVerificationError(
      'signature_mismatch',
      'no signature in the header matches the body under the given secrets',
    );
  }
  return true;
}
