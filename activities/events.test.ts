import { envelope } from './events';

const input = {
  type: 'payment.approved',
  attempt: 2,
  occurredAt: '2026-11-28T00:00:00.000Z',
  purchaseId: 'pur_1',
  merchantId: 'm_local',
  workflowId: 'purchase:m_local:k',
  runId: 'run-1',
  data: { chargeId: 'ch_1' },
};

test('when the same event is built twice, then it has the same id, stable per purchase, type and round', () => {
  expect(envelope(input).eventId).toBe(envelope({ ...input }).eventId);
  expect(envelope(input).eventId).toBe('pur_1:payment.approved:2');
  expect(envelope({ ...input, attempt: 3 }).eventId).not.toBe(envelope(input).eventId);
});

test('when an envelope is built, then it carries every field consumers rely on', () => {
  expect(Object.keys(envelope(input)).sort()).toEqual(
    [
      'data',
      'eventId',
      'merchantId',
      'occurredAt',
      'purchaseId',
      'runId',
      'schemaVersion',
      'type',
      'workflowId',
    ].sort(),
  );
});
