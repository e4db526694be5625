import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
/** Hours, fractions allowed: tests shrink a 72-hour window to seconds. */
const hours = z.coerce.number().positive();

/** The payload key of the local stack and the tests; a production service refuses it. */
const LOCAL_PAYLOAD_KEY = 'yRIavDCmAvMwoQyWJa84yzyX1EY2z7GxV0Gr8uPUfNc=';
export const LOCAL_PAYLOAD_KEYS = `local:${LOCAL_PAYLOAD_KEY}`;
const KEY_ID = /^[\w.-]{1,64}$/;

/** `<keyId>:<base64 of 32 bytes>`, comma-separated, into a map from id to key. */
const payloadKeys = z
  .string()
  .default(LOCAL_PAYLOAD_KEYS)
  .transform((s, ctx): ReadonlyMap<string, Buffer> => {
    const keys = new Map<string, Buffer>();
    for (const entry of s.split(',').map((e) => e.trim())) {
      const sep = entry.indexOf(':');
      const id = entry.slice(0, sep);
      const key = Buffer.from(entry.slice(sep + 1), 'base64');
      if (sep < 0 || !KEY_ID.test(id) || key.length !== 32) {
        // The entry itself is a secret: the message names its position, never its text.
        ctx.addIssue({
          code: 'custom',
          message: `entry ${keys.size + 1} must be <keyId>:<base64 of 32 bytes>, the id of letters, digits, '.', '_' or '-'`,
        });
        return z.NEVER;
      }
      if (keys.has(id)) {
        ctx.addIssue({ code: 'custom', message: `key id ${id} is listed twice` });
        return z.NEVER;
      }
      keys.set(id, key);
    }
    return keys;
  });

const origins = z
  .string()
  .transform((s) => s.split(',').map((o) => o.trim()))
  .pipe(
    z.array(
      z.url().refine((o) => new URL(o).origin === o, 'must be an origin: scheme://host[:port]'),
    ),
  );

/** Every environment variable the services read. The README's table mirrors this schema. */
export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.url().default('mysql://gateway:gateway@127.0.0.1:3306/gateway'),
  KAFKA_BROKERS: z
    .string()
    .min(1)
    .default('127.0.0.1:9092')
    .transform((s) => s.split(',').map((b) => b.trim())),
  KAFKA_CONNECT_URL: z.url().default('http://127.0.0.1:8083'),
  OPENSEARCH_URL: z.url().default('http://127.0.0.1:9200'),
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** 127.0.0.1 natively; 0.0.0.0 inside a container so other containers can reach the app. */
  HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  API_PORT: port.default(3000),
  PRODUTO_PORT: port.default(3001),
  PROVIDER_SANDBOX_PORT: port.default(3002),
  PROVIDER_URL: z.url().default('http://127.0.0.1:3002'),
  PURCHASES_TASK_QUEUE: z.string().min(1).default('process-purchases'),
  PAYMENTS_TASK_QUEUE: z.string().min(1).default('payment-processing'),
  TEMPORAL_START_TIMEOUT_MS: positiveInt.default(5000),
  API_KEY_CACHE_SECONDS: z.coerce.number().int().min(0).max(300).default(10),
  IDEMPOTENCY_TTL_HOURS: positiveInt.min(24).default(24),
  DEDUP_WINDOW_SECONDS: positiveInt.default(600),
  PAYMENT_RETRY_INITIAL_MS: positiveInt.default(1000),
  PAYMENT_RETRY_BACKOFF: z.coerce.number().min(1).default(2),
  PAYMENT_RETRY_MAX_INTERVAL_MS: positiveInt.default(30000),
  PAYMENT_RETRY_MAX_ATTEMPTS: positiveInt.default(8),
  PROVIDER_TIMEOUT_MS: positiveInt.default(5000),
  /** A manual authorization neither captured nor voided is voided by its workflow after this. */
  AUTHORIZATION_TTL_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(168),
  /** How long a capture, void or refund request waits for its outcome before answering 202. */
  OPERATION_WAIT_MS: z.coerce.number().int().min(0).max(60000).default(10000),
  /*
   * Worker tuning; unset means the SDK's default (docs/benchmarks.md, "Worker settings",
   * has what was measured). Slots for workflow tasks, workflows kept in the cache, and
   * concurrent workflow-task polls.
   */
  WORKER_WORKFLOW_TASK_SLOTS: positiveInt.optional(),
  WORKER_CACHED_WORKFLOWS: z.coerce.number().int().min(0).optional(),
  WORKER_WORKFLOW_POLLERS: positiveInt.optional(),
  /** One V8 context for every workflow of the worker (the SDK's default) or one each. */
  WORKER_REUSE_V8_CONTEXT: z.stringbool().default(true),
  SHUTDOWN_TIMEOUT_MS: positiveInt.default(15000),
  /** Keys that decrypt Temporal payloads; old ones stay listed so old histories still read. */
  PAYLOAD_KEYS: payloadKeys,
  /** The key new payloads are encrypted with. */
  PAYLOAD_KEY_ID: z.string().regex(KEY_ID).default('local'),
  /** Web UI origins allowed to call the api's codec endpoint from a browser. */
  CODEC_CORS_ORIGINS: origins.default(['http://127.0.0.1:8233', 'http://localhost:8233']),
  /* Webhooks (docs/webhooks.md). */
  WEBHOOKS_TASK_QUEUE: z.string().min(1).default('webhooks'),
  /** The dispatcher's Kafka consumer group over purchases.events and payments.dlq. */
  WEBHOOK_CONSUMER_GROUP: z.string().min(1).default('webhooks'),
  /**
   * Where a consumer group without offsets starts: `earliest` records every event the
   * topics still hold (nothing published before the first deploy is missed), `latest`
   * only what comes after.
   */
  WEBHOOK_CONSUMER_FROM: z.enum(['earliest', 'latest']).default('earliest'),
  /** One delivery attempt's deadline: connect, send and the answer's status line. */
  WEBHOOK_TIMEOUT_MS: positiveInt.max(30000).default(10000),
  WEBHOOK_RETRY_INITIAL_MS: positiveInt.default(30000),
  WEBHOOK_RETRY_MAX_INTERVAL_MS: positiveInt.default(3_600_000),
  /** A delivery is retried this long after its first attempt, then given up. */
  WEBHOOK_RETRY_HOURS: hours.default(72),
  /** An endpoint whose attempts have all failed for this long is disabled. */
  WEBHOOK_DISABLE_AFTER_HOURS: hours.default(72),
  /** After a rotation the old secret still signs for this long. */
  WEBHOOK_SECRET_GRACE_HOURS: hours.default(24),
  /** Deliveries a webhooks worker runs at once; each mostly waits on the network. */
  WEBHOOK_ACTIVITY_SLOTS: positiveInt.default(100),
  /** Attempts in flight to one endpoint per worker; more wait, so one slow endpoint cannot fill the slots. */
  WEBHOOK_ENDPOINT_CONCURRENCY: positiveInt.default(10),
});

/** The rules between variables, checked once each has parsed. */
const checkedSchema = configSchema.refine((c) => c.PAYLOAD_KEYS.has(c.PAYLOAD_KEY_ID), {
  path: ['PAYLOAD_KEY_ID'],
  message: 'must name one of the keys in PAYLOAD_KEYS',
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

/** Parses the environment once at start-up; throws naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = checkedSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  if (parsed.data.NODE_ENV === 'production') {
    const local = Object.entries(env).filter(([, v]) => v && isLocalKey(v));
    if (usesLocalPayloadKey(parsed.data.PAYLOAD_KEYS)) local.push(['PAYLOAD_KEYS', '']);
    if (local.length > 0) {
      const names = local.map(([k]) => k).join(', ');
      throw new ConfigError(
        `invalid configuration: ${names}: local test keys are refused in production`,
      );
    }
  }
  return parsed.data;
}

/** The keys seeded for the local stack; a production service refuses to run with them. */
export function isLocalKey(value: string): boolean {
  return value.startsWith('sk_test_') || value === 'sk_admin_local';
}

/** True when the local payload key is among `keys`, under any id: also when left at the default. */
function usesLocalPayloadKey(keys: ReadonlyMap<string, Buffer>): boolean {
  const local = Buffer.from(LOCAL_PAYLOAD_KEY, 'base64');
  return [...keys.values()].some((k) => k.equals(local));
}
