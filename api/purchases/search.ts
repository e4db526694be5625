import type { RequestHandler } from 'express';
import { z } from 'zod';
import { merchantOf } from '../../common/auth';
import type { SearchEngine } from '../../search/engine';
import { answerSearch, searchCursor, searchLimit } from '../../search/http';
import { PURCHASE_STATUSES } from '../../workflows/contract';

export const purchaseSearchQuery = z
  .strictObject({
    customerId: z.string().min(1).max(255).optional(),
    status: z.enum(PURCHASE_STATUSES).optional(),
    /** Inclusive lower bound of createdAt, ISO 8601 with an offset. */
    from: z.iso.datetime({ offset: true }).pipe(z.coerce.date()).optional(),
    /** Exclusive upper bound of createdAt. */
    to: z.iso.datetime({ offset: true }).pipe(z.coerce.date()).optional(),
    limit: searchLimit,
    cursor: searchCursor.optional(),
  })
  .refine((q) => !q.from || !q.to || q.from < q.to, {
    path: ['to'],
    message: 'must be after from',
  });

/**
 * GET /v1/purchases/search for support staff: newest first, always within the calling
 * merchant (the filter comes from the API key, never from the query). Answered from the
 * index, so a purchase shows up about a second after its row changes.
 */
export function searchPurchasesHandler(
  search: Pick<SearchEngine, 'searchPurchases'>,
): RequestHandler {
  return async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    const query = purchaseSearchQuery.parse(req.query);
    res.json(await answerSearch(() => search.searchPurchases({ ...query, merchantId })));
  };
}
