import { createHash } from 'node:crypto';
import type { PurchaseLine } from '../workflows/contract';

export interface FingerprintInput {
  merchantId: string;
  customerId: string;
  items: PurchaseLine[];
  amountMinor: number;
  currency: string;
  token: string;
}

/** Same merchant, customer, basket, amount, currency and card token give the same digest. */
export function purchaseFingerprint(input: FingerprintInput): string {
  const items = [...input.items]
    .map((i) => [i.productId, i.quantity] as const)
    .sort(([a, qa], [b, qb]) => (a === b ? qa - qb : a < b ? -1 : 1));
  return createHash('sha256')
    .update(
      JSON.stringify([
        input.merchantId,
        input.customerId,
        items,
        input.amountMinor,
        input.currency,
        input.token,
      ]),
    )
    .digest('hex');
}
