import { purchaseFingerprint } from './fingerprint';

const base = {
  merchantId: 'm_local',
  customerId: 'cus_1',
  items: [
    { productId: 'b', quantity: 1, unitPriceMinor: 100 },
    { productId: 'a', quantity: 2, unitPriceMinor: 50 },
  ],
  amountMinor: 200,
  currency: 'BRL',
  token: 'tok_visa',
};

test('when the lines come in another order, then the fingerprint is the same', () => {
  const reordered = { ...base, items: [...base.items].reverse() };

  expect(purchaseFingerprint(reordered)).toBe(purchaseFingerprint(base));
});

test.each([
  ['merchant', { merchantId: 'm_other' }],
  ['customer', { customerId: 'cus_2' }],
  ['amount', { amountMinor: 201 }],
  ['currency', { currency: 'USD' }],
  ['token', { token: 'tok_other' }],
])('when the %s differs, then the fingerprint differs', (_name, change) => {
  expect(purchaseFingerprint({ ...base, ...change })).not.toBe(purchaseFingerprint(base));
});
