import { Ledger } from './ledger';

const visa = { amount: 1000, currency: 'EUR', token: 'tok_visa' };

test('when a key is attempted again with the same request, then the attempts are counted', () => {
  const ledger = new Ledger();

  ledger.attempt('k', visa);
  const second = ledger.attempt('k', visa);

  expect(second).toEqual({ kind: 'accepted', attempts: 2, charge: undefined });
});

test('when a key is attempted with another token, then it is a conflict', () => {
  const ledger = new Ledger();
  ledger.attempt('k', visa);

  const reuse = ledger.attempt('k', { ...visa, token: 'tok_other' });

  expect(reuse).toEqual({ kind: 'conflict' });
});

test('when a charge is recorded twice under one key, then the first is kept and listed once', () => {
  const ledger = new Ledger();
  ledger.attempt('k', visa);

  const first = ledger.record('k', 1000, 'EUR');
  const second = ledger.record('k', 1000, 'EUR');

  expect(second).toBe(first);
  expect(ledger.list()).toEqual([first]);
  expect(ledger.find('k')).toBe(first);
  expect(ledger.attempt('k', visa)).toMatchObject({ kind: 'accepted', charge: first });
});

test('when charges are recorded, then the list is oldest first', () => {
  const ledger = new Ledger();
  ledger.attempt('a', visa);
  ledger.attempt('b', visa);

  const a = ledger.record('a', 1000, 'EUR');
  const b = ledger.record('b', 1000, 'EUR');

  expect(ledger.list().map((c) => c.id)).toEqual([a.id, b.id]);
});

test('when a key used for a charge is attempted for a capture, then it is a conflict', () => {
  const ledger = new Ledger();
  ledger.attempt('k', visa);

  const reuse = ledger.attempt('k', { kind: 'capture', authorizationId: 'auth_1', amount: 1 });

  expect(reuse).toEqual({ kind: 'conflict' });
});

test('when a follow-up the ledger refuses is recorded anyway, then it throws and nothing is kept', () => {
  const ledger = new Ledger();
  ledger.attempt('c', visa);
  const charge = ledger.record('c', 1000, 'EUR');
  const refund = { kind: 'refund' as const, paymentId: charge.id, amount: 1001 };
  ledger.attempt('r', refund);

  expect(() => ledger.recordFollowUp('r', refund)).toThrow('refund_exceeds_payment');
  expect(ledger.movements()).toHaveLength(1);
});

test('when a charge is recorded, then it is also a movement of kind charge', () => {
  const ledger = new Ledger();
  ledger.attempt('k', visa);

  const charge = ledger.record('k', 1000, 'EUR');

  expect(ledger.findMovement('k')).toEqual({ ...charge, kind: 'charge' });
  expect(ledger.movements()).toEqual([{ ...charge, kind: 'charge' }]);
});

test('when a capture is refunded, then the check names its authorization as the origin', () => {
  const ledger = new Ledger();
  ledger.attempt('a', { ...visa, kind: 'authorization' });
  const auth = ledger.recordAuthorization('a', 1000, 'EUR');
  const capture = { kind: 'capture' as const, authorizationId: auth.id, amount: 400 };
  ledger.attempt('c', capture);
  const captured = ledger.recordFollowUp('c', capture);

  const check = ledger.check({ kind: 'refund', paymentId: captured.id, amount: 400 });

  expect(check).toEqual({
    kind: 'allowed',
    amount: 400,
    currency: 'EUR',
    parentId: captured.id,
    originId: auth.id,
  });
});
