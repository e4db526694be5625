import { z } from 'zod';

const currencies = new Set(Intl.supportedValuesOf('currency'));

/** An ISO 4217 alphabetic code, upper case, that the runtime knows as a currency. */
export const currencyCode = z
  .string()
  .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code')
  .refine((c) => currencies.has(c), 'is not an ISO 4217 currency');
