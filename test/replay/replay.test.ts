import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { dataConverterFor } from '../../common/codec';
import { loadConfig } from '../../common/config';

/*
 * Recorded histories of real purchases (one per way a purchase ends), replayed through
 * the current workflow code. A non-deterministic change fails here instead of stranding
 * open payments. The plain names are the first shape (workflow ids from the merchant and
 * Idempotency-Key, payloads in clear); v2-* are purchase-scoped ids with encrypted
 * payloads, recorded with the local development key; v3-* are the `purchase` type, with its
 * steps as local activities (v3-captured, v3-voided and v3-authorization-expired are manual
 * captures, with their updates); refund-* are the `refund` type. webhooks/ holds histories
 * of the webhook delivery workflow. Record a new one with:
 *   temporal workflow show --workflow-id <id> --output json > test/replay/histories/<name>.json
 */
const dir = join(__dirname, 'histories');

beforeAll(() => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
});

/** Replays every history in `folder` through the workflows at `workflowsPath`. */
async function replayAll(folder: string, workflowsPath: string) {
  const files = (await readdir(folder)).filter((f) => f.endsWith('.json')).sort();
  const histories = await Promise.all(
    files.map(async (file) => ({
      workflowId: file,
      history: JSON.parse(await readFile(join(folder, file), 'utf8')) as object,
    })),
  );
  const results = [];
  for await (const result of Worker.runReplayHistories(
    { workflowsPath, dataConverter: dataConverterFor(loadConfig({ NODE_ENV: 'test' })) },
    histories,
  )) {
    results.push({ file: result.workflowId, error: result.error?.message });
  }
  return { files, results };
}

test('when recorded purchase histories are replayed through the current workflow code, then none diverge', async () => {
  const { files, results } = await replayAll(dir, require.resolve('../../workflows'));

  expect(files).toEqual(
    expect.arrayContaining([
      ...['approved.json', 'declined.json', 'retried.json', 'canceled.json'],
      ...['v2-approved.json', 'v2-declined.json', 'v2-retried.json', 'v2-reconciled.json'],
      'v2-canceled-from-temporal.json',
      ...['v3-approved.json', 'v3-declined.json', 'v3-reconciled.json', 'v3-retried.json'],
      ...['v3-canceled-from-temporal.json', 'v3-duplicate.json', 'v3-rejected.json'],
    ]),
  );
  expect(results).toEqual(files.map((file) => ({ file, error: undefined })));
});

test('when recorded webhook delivery histories are replayed through the current workflow code, then none diverge', async () => {
  // Delivered after two failed attempts, skipped once its endpoint was disabled, and given
  // up at once on a URL refused at delivery time.
  const { files, results } = await replayAll(
    join(dir, 'webhooks'),
    require.resolve('../../workflows/webhooks'),
  );

  expect(files).toEqual([
    'endpoint-disabled.json',
    'retried-then-delivered.json',
    'url-refused.json',
  ]);
  expect(results).toEqual(files.map((file) => ({ file, error: undefined })));
});
