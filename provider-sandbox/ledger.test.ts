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
