import { createHash } from 'node:crypto';
import { z } from 'zod';
import { currencyCode } from '../../common/money';
import { CAPTURE_METHODS } from '../../workflows/contract';

export const idempotencyKeyHeader = z
  .string({ error: 'the Idempotency-Key header is required' })
  .regex(/^[\x20-\x7e]{1,255}$/, 'must be 1 to 255 printable ASCII characters');

export const createPurchaseBody = z.strictObject({
  customerId: z.string().min(1).max(255),
  items: z
    .array(
      z.strictObject({
        productId: z.string().min(1).max(64),
        quantity: z.number().int().min(1).max(100),
      }),
    )
    .min(1)
    .max(50),
  currency: currencyCode,
  paymentMethod: z.strictObject({
    type: z.literal('card_token'),
    token: z.string().min(1).max(255),
  }),
  metadata: z
    .record(z.string().max(40), z.string().max(500))
    .refine((m) => Object.keys(m).length <= 20, 'at most 20 keys')
    .optional(),
  /** No default here: an absent field keeps the request hash of keys sent before it existed. */
  captureMethod: z.enum(CAPTURE_METHODS).optional(),
});

const amount = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const captureBody = z.strictObject({ amount: amount.optional() });
export const voidBody = z.strictObject({});
export const refundBody = z.strictObject({
  amount: amount.optional(),
  reason: z.string().min(1).max(500).optional(),
  restock: z.boolean().default(false),
});

export type CreatePurchaseBody = z.infer<typeof createPurchaseBody>;

/** JSON with object keys sorted at every depth, so key order never changes the hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export const requestHash = (body: unknown): string =>
  createHash('sha256').update(canonicalJson(body)).digest('hex');
