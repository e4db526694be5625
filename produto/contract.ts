import { z } from 'zod';
import { AppError } from '../common/errors';
import { currencyCode } from '../common/money';

/* What crosses the wire: request bodies, the list query, the cursor and the ETag. */

const fields = {
  sku: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9._-]+$/, 'may contain only letters, digits, ".", "_" and "-"'),
  name: z.string().min(1).max(200),
  description: z.string().max(5000),
  priceMinor: z.number().int().positive().max(2_000_000_000),
  currency: currencyCode,
  // The column is a signed INT.
  stock: z.number().int().min(0).max(2_147_483_647),
  active: z.boolean(),
};

export const newProductBody = z.strictObject({
  ...fields,
  description: fields.description.default(''),
  active: fields.active.default(true),
});

export type NewProduct = z.infer<typeof newProductBody>;

// The sku is the product's business identity, so it is not among the fields a PATCH may change.
export const productChangesBody = z
  .strictObject({
    name: fields.name.optional(),
    description: fields.description.optional(),
    priceMinor: fields.priceMinor.optional(),
    currency: fields.currency.optional(),
    stock: fields.stock.optional(),
    active: fields.active.optional(),
  })
  .refine((changes) => Object.keys(changes).length > 0, 'at least one field is required');

export type ProductChanges = z.infer<typeof productChangesBody>;

// Any string: an id that is not a product's is answered 404 by the lookup.
export const productPath = z.object({ id: z.string() });

export const encodeCursor = (id: string): string => Buffer.from(id).toString('base64url');

/** The id inside a cursor, or undefined if the cursor is not one this service issued. */
export function decodeCursor(cursor: string): string | undefined {
  const id = Buffer.from(cursor, 'base64url').toString();
  // Base64url decoding forgives junk; only an exact round trip is a cursor we made.
  return /^[0-9a-fA-F-]{1,36}$/.test(id) && encodeCursor(id) === cursor ? id : undefined;
}

export const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z
    .string()
    .max(100)
    .transform((cursor, ctx) => {
      const afterId = decodeCursor(cursor);
      if (afterId === undefined) {
        ctx.addIssue({ code: 'custom', message: 'is not a cursor from this service' });
        return z.NEVER;
      }
      return afterId;
    })
    .optional(),
});

export const etagOf = (version: number): string => `"${version}"`;

/** The version an `If-Match` header names; only a single strong ETag can match. */
export function expectedVersion(ifMatch: string | undefined): number {
  if (ifMatch === undefined || ifMatch.trim() === '') {
    throw new AppError(
      428,
      'precondition_required',
      'send If-Match with the ETag of the product you are changing',
    );
  }
  const match = /^\s*"(\d{1,10})"\s*$/.exec(ifMatch);
  // Anything else (a weak tag, "*", a list) cannot name one version, so it cannot match.
  if (!match?.[1]) throw preconditionFailed();
  return Number(match[1]);
}

export const preconditionFailed = (currentVersion?: number): AppError =>
  new AppError(
    412,
    'precondition_failed',
    'the product has changed since that ETag; fetch it again and retry',
    undefined,
    currentVersion === undefined ? {} : { ETag: etagOf(currentVersion) },
  );
