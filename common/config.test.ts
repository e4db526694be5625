import { ConfigError, loadConfig } from './config';

test('when nothing is set, then the local-stack defaults apply', () => {
  const config = loadConfig({});

  expect(config).toMatchObject({
    API_PORT: 3000,
    KAFKA_BROKERS: ['127.0.0.1:9092'],
    PAYMENT_RETRY_MAX_ATTEMPTS: 8,
  });
});

test('when a variable is malformed, then loading fails naming it', () => {
  expect(() => loadConfig({ API_PORT: 'eighty' })).toThrow(/API_PORT/);
  expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(ConfigError);
});

test('when the idempotency retention is under 24 hours, then loading fails', () => {
  expect(() => loadConfig({ IDEMPOTENCY_TTL_HOURS: '1' })).toThrow(/IDEMPOTENCY_TTL_HOURS/);
});

test.each(['sk_test_local', 'sk_admin_local'])(
  'when production is configured with the local key %s, then it refuses to start',
  (key) => {
    expect(() => loadConfig({ NODE_ENV: 'production', BENCH_API_KEY: key })).toThrow(
      /BENCH_API_KEY/,
    );
  },
);

test('when development uses a local key, then it starts', () => {
  expect(() =>
    loadConfig({ NODE_ENV: 'development', BENCH_API_KEY: 'sk_test_local' }),
  ).not.toThrow();
});

test('when no webhook variable is set, then deliveries time out at 10 s and retry and disable after 72 h', () => {
  expect(loadConfig({})).toMatchObject({
    WEBHOOK_TIMEOUT_MS: 10000,
    WEBHOOK_RETRY_HOURS: 72,
    WEBHOOK_DISABLE_AFTER_HOURS: 72,
    WEBHOOK_SECRET_GRACE_HOURS: 24,
  });
  expect(() => loadConfig({ WEBHOOK_RETRY_HOURS: '0' })).toThrow(/WEBHOOK_RETRY_HOURS/);
});
