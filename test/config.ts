import { loadConfig } from '../common/config';

/** The local stack's defaults; tests never read or change process.env. */
/** Tests run in a Temporal namespace of their own (created by stack/components/temporal.sh). */
export const TEST_NAMESPACE = 'gateway-test';

export const testConfig = loadConfig({
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  TEMPORAL_NAMESPACE: TEST_NAMESPACE,
});

/** Polls `check` until it returns a value, failing after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 20000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const reason = lastError instanceof Error ? lastError.message : 'still undefined';
  throw new Error(`condition not met in ${timeoutMs} ms: ${reason}`);
}
