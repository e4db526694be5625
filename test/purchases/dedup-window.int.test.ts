import type { Platform } from './harness';
import { createProduct, post, purchaseBody, startPlatform } from './harness';
import { chargesFor, finalState } from './helpers';

let platform: Platform;
beforeAll(async () => {
  platform = await startPlatform({ DEDUP_WINDOW_SECONDS: '2' });
});
afterAll(() => platform.close());

test('when the same basket is bought again after the window, then it is a new approved purchase', async () => {
  const productId = await createProduct(platform.prisma);
  const body = purchaseBody(productId);
  const first = await post(platform, body);
  await finalState(platform, first.json.id as string, ['APPROVED']);
  await new Promise((r) => setTimeout(r, 2500)); // let the 2 s window lapse

  const again = await post(platform, body);
  const done = await finalState(platform, again.json.id as string, ['APPROVED', 'DUPLICATE']);

  expect(done.status).toBe('APPROVED');
  expect(await chargesFor(platform, again.json.id as string)).toHaveLength(1);
});
