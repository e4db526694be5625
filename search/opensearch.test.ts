import { errors } from '@opensearch-project/opensearch';
import type { Client } from '@opensearch-project/opensearch';
import { InvalidCursorError } from './engine';
import { createOpenSearchEngine, decodeCursor, encodeCursor } from './opensearch';
import type { SlotType } from './opensearch';

const cursorOf = (values: unknown[]): string =>
  Buffer.from(JSON.stringify(values)).toString('base64url');

/** An engine whose every search fails the way OpenSearch refuses a search_after. */
function refusingEngine(statusCode: number): ReturnType<typeof createOpenSearchEngine> {
  const refusal = new errors.ResponseError({
    statusCode,
    body: {
      error: { type: 'search_phase_execution_exception', root_cause: [] },
      status: statusCode,
    },
    headers: {},
    warnings: null,
    meta: {} as never,
  });
  const client = { search: () => Promise.reject(refusal) } as unknown as Client;
  return createOpenSearchEngine(client);
}

test('when a cursor was issued for [score, id] or [createdAt, id], then it decodes to its values', () => {
  expect(decodeCursor(encodeCursor([1.2345, 'p1']), ['score', 'keyword'])).toEqual([1.2345, 'p1']);
  expect(decodeCursor(encodeCursor([1796195998071, 'pur_1']), ['epochMillis', 'keyword'])).toEqual([
    1796195998071,
    'pur_1',
  ]);
});

test.each<{ name: string; values: unknown[]; slots: SlotType[] }>([
  { name: 'strings for [score, id]', values: ['x', 'y'], slots: ['score', 'keyword'] },
  { name: 'strings for [createdAt, id]', values: ['x', 'y'], slots: ['epochMillis', 'keyword'] },
  {
    name: 'a date string',
    values: ['2026-01-01T00:00:00Z', 'y'],
    slots: ['epochMillis', 'keyword'],
  },
  { name: 'a fractional time', values: [1.5, 'y'], slots: ['epochMillis', 'keyword'] },
  { name: 'a time past 2^53', values: [1e300, 'y'], slots: ['epochMillis', 'keyword'] },
  { name: 'a numeric id', values: [1, 2], slots: ['score', 'keyword'] },
  { name: 'a null score', values: [null, 'y'], slots: ['score', 'keyword'] },
  { name: 'a boolean id', values: [true], slots: ['keyword'] },
  { name: 'one value short', values: [1], slots: ['score', 'keyword'] },
  { name: 'one value long', values: [1, 'y', 'z'], slots: ['epochMillis', 'keyword'] },
])('when a cursor holds $name, then InvalidCursorError', ({ values, slots }) => {
  expect(() => decodeCursor(cursorOf(values), slots)).toThrow(InvalidCursorError);
});

test('when the engine refuses a search with a cursor with 400, then InvalidCursorError', async () => {
  const engine = refusingEngine(400);

  await expect(
    engine.searchProducts({ q: 'a', limit: 10, cursor: encodeCursor([1, 'p1']) }),
  ).rejects.toBeInstanceOf(InvalidCursorError);
});

test('when the engine refuses a search without a cursor with 400, then its error passes on', async () => {
  const engine = refusingEngine(400);

  await expect(engine.searchProducts({ q: 'a', limit: 10 })).rejects.toBeInstanceOf(
    errors.ResponseError,
  );
});
