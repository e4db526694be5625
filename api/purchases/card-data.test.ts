import { containsCardNumber, passesLuhn } from './card-data';

test.each(['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117'])(
  'when %s is checked, then it passes Luhn',
  (pan) => {
    expect(passesLuhn(pan)).toBe(true);
  },
);

test('when a digit is changed, then Luhn fails', () => {
  expect(passesLuhn('4111111111111112')).toBe(false);
});

test.each([
  ['a bare number in a string', { token: '4111111111111111' }],
  ['digits split by spaces', { note: 'my card 4111 1111 1111 1111 thanks' }],
  ['digits split by dashes', { note: '4111-1111-1111-1111' }],
  ['a JSON number', { n: 4111111111111111 }],
  ['a nested array', { a: [{ b: ['x', '5555555555554444'] }] }],
  ['an object key', { '4111111111111111': 'x' }],
  ['American Express grouping', { note: '3782 822463 10005' }],
])('when a card number hides in %s, then it is found', (_name, body) => {
  expect(containsCardNumber(body)).toBe(true);
});

test.each([
  ['a card token', { token: 'tok_visa' }],
  ['a 12-digit number', { phone: '551199998888' }],
  ['16 digits failing Luhn', { ref: '1234567812345678' }],
  ['a uuid', { id: 'f47ac10b-58cc-4372-a567-0e02b2c3d479' }],
  // Its digit groups joined (8899712111514) pass Luhn; it is an id, not a card.
  ['a uuid whose leading groups are digits', { productId: '88997121-1151-4b85-9a1c-2c1e0b2d7f10' }],
  ['a long reference number', { ref: '12345678901234567890123' }],
])('when the body holds only %s, then nothing is found', (_name, body) => {
  expect(containsCardNumber(body)).toBe(false);
});

/** `levels` arrays around `inner`, built without recursion. */
function nestedArrays(levels: number, inner: unknown): unknown {
  let value = inner;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

test.each([
  ['arrays around a card', nestedArrays(100_000, '4111111111111111'), true],
  ['arrays around a token', nestedArrays(100_000, 'tok_visa'), false],
  [
    'objects around a card',
    Array.from({ length: 100_000 }).reduce<unknown>((inner) => ({ a: inner }), {
      pan: '5555555555554444',
    }),
    true,
  ],
])(
  'when the body is 100,000 levels of %s, then the scan answers without a stack overflow',
  (_name, body, found) => {
    expect(containsCardNumber(body)).toBe(found);
  },
);

test('when a card number sits after many clean siblings, then it is still found', () => {
  const body = { items: Array.from({ length: 1000 }, (_, i) => ({ productId: `p${i}` })) };
  body.items.push({ productId: '4111 1111 1111 1111' });

  expect(containsCardNumber(body)).toBe(true);
});
