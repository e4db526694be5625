import { eventually } from '../config';
import type { Platform } from './harness';
import { createProduct, getPurchase, post, purchaseBody, startPlatform } from './harness';

let platform: Platform;
beforeAll(async () => {
  platform = await startPlatform();
});
afterAll(() => platform.close());

async function finalState(id: string, statuses: string[]): Promise<Record<string, unknown>> {
  return eventually(async () => {
    const { json } = await getPurchase(platform, id);
    return statuses.includes(json.status as string) ? json : undefined;
  }, 60000);
}

async function ledgerFor(workflowId: string): Promise<unknown[]> {
  const res = await fetch(
    `${platform.sandboxUrl}/charges?idempotencyKey=${encodeURIComponent(workflowId)}`,
  );
  return ((await res.json()) as { data: unknown[] }).data;
}

async function stockOf(productId: string): Promise<number> {
  return (await platform.prisma.product.findUniqueOrThrow({ where: { id: productId } })).stock;
}

test('when a purchase of a tok_visa card is made, then it is approved with one charge and stock taken', async () => {
  const productId = await createProduct(platform.prisma, { priceMinor: 2500, stock: 10 });

  const res = await post(platform, purchaseBody(productId));

  expect(res.status).toBe(202);
  expect(res.json).toMatchObject({ status: 'RECEIVED', amount: 5000, currency: 'BRL' });
  expect(res.headers.get('location')).toBe(`/v1/purchases/${String(res.json.id)}`);
  const done = await finalState(res.json.id as string, ['APPROVED', 'FAILED', 'DECLINED']);
  expect(done.status).toBe('APPROVED');
  expect((done.timeline as { to: string }[]).map((t) => t.to)).toEqual([
    'RECEIVED',
    'PROCESSING',
    'APPROVED',
  ]);
  const row = await platform.prisma.purchase.findUniqueOrThrow({
    where: { id: res.json.id as string },
  });
  expect(await ledgerFor(row.workflowId)).toHaveLength(1);
  expect(await stockOf(productId)).toBe(8);
});
