import { loadConfig } from '../common/config';

/** The local stack's defaults; tests never read or change process.env. */
export const testConfig = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent' });

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
