import type { Platform } from '../purchases/harness';
import { createProduct, post, purchaseBody, startPlatform } from '../purchases/harness';
import type { Receiver, WebhookPlatform } from './harness';
import { payloadOf, startReceiver, startWebhookPlatform, untilReceived } from './harness';

// Real purchases through the api, the purchase workflow and the sandbox, with the
// webhook dispatcher and worker beside them: the events come from the workflow itself.
let purchases: Platform;
let webhooks: WebhookPlatform;
let receiver: Receiver;
beforeAll(async () => {
  purchases = await startPlatform();
  webhooks = await startWebhookPlatform();
  receiver = await startReceiver();
});
afterAll(async () => {
  await webhooks?.close();
  await purchases?.close();
  await receiver?.close();
});

test('when purchases are approved, declined and fail, then each merchant webhook carries the purchase status and version', async () => {
  const merchant = await webhooks.newMerchant();
  const created = await webhooks.call(merchant.key, 'POST', '/v1/webhook-endpoints', {
    url: receiver.url,
    events: ['payment.approved', 'payment.declined', 'payment.failed'],
  });
  receiver.secrets = [created.json.secret as string];
  const productId = await createProduct(purchases.prisma);

  const ids: Record<string, string> = {};
  for (const token of ['tok_visa', 'tok_decline', 'tok_down']) {
    const res = await post(purchases, purchaseBody(productId, token), { apiKey: merchant.key });
    expect(res.status).toBe(202);
    ids[token] = res.json.id as string;
  }

  const got = await untilReceived(receiver, 3, 60000);
  expect(got.every((r) => r.verified === true)).toBe(true);
  const byPurchase = new Map(got.map((r) => [payloadOf(r).purchaseId, payloadOf(r)]));
  const rows = await purchases.prisma.purchase.findMany({
    where: { id: { in: Object.values(ids) } },
    select: { id: true, status: true, version: true },
  });
  const version = new Map(rows.map((r) => [r.id, r.version]));
  expect(byPurchase.get(ids.tok_visa)).toMatchObject({
    type: 'payment.approved',
    merchantId: merchant.merchantId,
    purchase: { status: 'APPROVED', version: version.get(ids.tok_visa!) },
  });
  expect(byPurchase.get(ids.tok_decline)).toMatchObject({
    type: 'payment.declined',
    purchase: { status: 'DECLINED', version: version.get(ids.tok_decline!) },
  });
  // payment.failed travels on the dead-letter topic.
  expect(byPurchase.get(ids.tok_down)).toMatchObject({
    type: 'payment.failed',
    purchase: { status: 'FAILED' },
  });
});
