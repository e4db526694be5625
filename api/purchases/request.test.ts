import { canonicalJson, requestHash } from './request';

test('when keys come in another order, then the canonical JSON and the hash are the same', () => {
  const a = { b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'z' } };
  const b = { a: { c: 'z', d: [1, { x: 1, y: 2 }] }, b: 1 };

  expect(canonicalJson(a)).toBe(canonicalJson(b));
  expect(requestHash(a)).toBe(requestHash(b));
});

test('when array order differs, then the hash differs', () => {
  expect(requestHash({ items: [1, 2] })).not.toBe(requestHash({ items: [2, 1] }));
});
