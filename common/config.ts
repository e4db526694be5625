import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

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
  SHUTDOWN_TIMEOUT_MS: positiveInt.default(15000),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

/** Parses the environment once at start-up; throws naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  if (parsed.data.NODE_ENV === 'production') {
    const local = Object.entries(env).filter(([, v]) => v && isLocalKey(v));
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
