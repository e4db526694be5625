import {
  allowedFrom,
  authorizeKeyFor,
  canTransition,
  captureKeyFor,
  chargeKeyFor,
  refundKeyFor,
  voidKeyFor,
  PURCHASE_STATUSES,
  workflowIdFor,
} from './contract';
import type { Actor } from './contract';

// Written out by hand, apart from the table it checks.
const allowed = new Set([
  'RECEIVED>PROCESSING:workflow',
  'RECEIVED>DUPLICATE:workflow',
  'RECEIVED>REJECTED:workflow',
  'PROCESSING>APPROVED:workflow',
  'PROCESSING>DECLINED:workflow',
  'PROCESSING>FAILED:workflow',
  'RECEIVED>PROCESSING:operator',
  'RECEIVED>DUPLICATE:operator',
  'RECEIVED>REJECTED:operator',
  'RECEIVED>CANCELED:operator',
  'PROCESSING>APPROVED:operator',
  'PROCESSING>DECLINED:operator',
  'PROCESSING>FAILED:operator',
  'FAILED>PROCESSING:operator',
  'FAILED>CANCELED:operator',
  ...[
    'PROCESSING>AUTHORIZED',
    'AUTHORIZED>APPROVED',
    'AUTHORIZED>VOIDED',
    'APPROVED>PARTIALLY_REFUNDED',
    'APPROVED>REFUNDED',
    'PARTIALLY_REFUNDED>REFUNDED',
  ].flatMap((move) => [`${move}:workflow`, `${move}:operator`]),
]);

const pairs = PURCHASE_STATUSES.flatMap((from) =>
  PURCHASE_STATUSES.flatMap((to) =>
    (['workflow', 'operator'] as Actor[]).map((by) => [from, to, by] as const),
  ),
);

test.each(pairs)(
  'a move from %s to %s by the %s is allowed only if the table says so',
  (from, to, by) => {
    expect(canTransition(from, to, by)).toBe(allowed.has(`${from}>${to}:${by}`));
  },
);

test('when a status is terminal, then nothing may move it, not even an operator', () => {
  const terminal = ['DECLINED', 'REJECTED', 'DUPLICATE', 'CANCELED', 'VOIDED', 'REFUNDED'] as const;
  for (const from of terminal) {
    expect(PURCHASE_STATUSES.filter((to) => canTransition(from, to, 'operator'))).toEqual([]);
  }
});

test('when the workflow alone asks for PROCESSING, then only RECEIVED may move there', () => {
  expect(allowedFrom('PROCESSING', 'workflow')).toEqual(['RECEIVED']);
  expect(allowedFrom('PROCESSING', 'operator')).toEqual(['RECEIVED', 'FAILED']);
});

test('when the purchase id is the longest one minted, then the provider key stays within 255 characters and is its own', () => {
  const id = `pur_${'f'.repeat(32)}`;
  const keys = [
    authorizeKeyFor(id),
    captureKeyFor(id, 1),
    captureKeyFor(id, 2),
    voidKeyFor(id, 1),
    refundKeyFor(id, `re_${'f'.repeat(32)}`),
    chargeKeyFor(id),
  ];
  expect(new Set(keys).size).toBe(keys.length);
  for (const key of keys) expect(key.length).toBeLessThanOrEqual(255);

  expect(chargeKeyFor(id).length).toBeLessThanOrEqual(255);
  expect(chargeKeyFor(id)).not.toBe(chargeKeyFor(`pur_${'e'.repeat(32)}`));
  expect(workflowIdFor(id)).toBe(`purchase:${id}`);
});
