import type { Platform } from './harness';
import { createProduct, post, purchaseBody, startPlatform } from './harness';
import { finalState, movementsOf, netOf, stockOf } from './helpers';

/*
 * An authorization nobody captures or voids is voided by its own workflow once
 * AUTHORIZATION_TTL_HOURS pass: a durable timer, here shortened to about two seconds.
 */
let platform: Platform;
beforeAll(async () => {
  platform = await startPlatform({ AUTHORIZATION_TTL_HOURS: String(2 / 3600) });
});
afterAll(() => platform.close());

test('when an authorization is left alone past its TTL, then the workflow voids it and the stock comes back', async () => {
  const productId = await createProduct(platform.prisma, { stock: 5 });
  const res = await post(
    platform,
    purchaseBody(productId, 'tok_visa', { captureMethod: 'manual' }),
  );
  const id = res.json.id as string;

  const voided = await finalState(platform, id, ['VOIDED'], 30_000);

  expect(voided.reason).toBe('authorization_expired');
  expect(await stockOf(platform, productId)).toBe(5);
  const movements = await movementsOf(platform, id);
  expect(movements.map((m) => m.kind)).toEqual(['authorization', 'void']);
  expect(netOf(movements)).toBe(0);
});
