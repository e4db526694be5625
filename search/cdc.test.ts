import { lastPerDocument, toIndexOp } from './cdc';
import type { IndexOp } from './cdc';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const key = json({ id: 'p1' });
const product = {
  id: 'p1',
  sku: 'sku-1',
  name: 'Café',
  description: '',
  price_minor: 1500,
  currency: 'BRL',
  stock: 2,
  active: 1,
  version: 3,
  created_at: 1_700_000_000_000,
  updated_at: 1_700_000_000_500,
};

describe('toIndexOp', () => {
  test('when a product row is updated, then an upsert carries its version as the external version', () => {
    const op = toIndexOp('products', key, json({ op: 'u', before: product, after: product }));

    expect(op).toEqual({
      kind: 'upsert',
      index: 'products',
      id: 'p1',
      version: 3,
      doc: expect.objectContaining({
        active: true,
        priceMinor: 1500,
        createdAt: '2023-11-14T22:13:20.000Z',
      }) as unknown,
    });
  });

  test('when a row is deleted, then the delete outranks the version it removed', () => {
    const op = toIndexOp('products', key, json({ op: 'd', before: product, after: null }));

    expect(op).toEqual({ kind: 'delete', index: 'products', id: 'p1', version: 4 });
  });

  test('when a tombstone arrives, then it is an unversioned delete', () => {
    expect(toIndexOp('products', key, null)).toEqual({
      kind: 'delete',
      index: 'products',
      id: 'p1',
    });
  });

  test('when a truncate arrives, then nothing is done', () => {
    expect(
      toIndexOp('products', key, json({ op: 't', before: null, after: null })),
    ).toBeUndefined();
  });

  test('when the row does not look like a product, then the error names the field', () => {
    const bad = { ...product, price_minor: 'x' };

    expect(() => toIndexOp('products', key, json({ op: 'c', before: null, after: bad }))).toThrow(
      /after\.price_minor/,
    );
  });
});

test('when a batch holds several events of one row, then only its last one is kept', () => {
  const op = (id: string, version: number): IndexOp => ({
    kind: 'delete',
    index: 'products',
    id,
    version,
  });

  expect(lastPerDocument([op('a', 1), op('b', 1), op('a', 2), op('a', 3)])).toEqual([
    op('b', 1),
    op('a', 3),
  ]);
});
