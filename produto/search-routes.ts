import { Router } from 'express';
import { z } from 'zod';
import { currencyCode } from '../common/money';
import type { SearchEngine } from '../search/engine';
import { answerSearch, searchCursor, searchLimit } from '../search/http';

const price = z.coerce.number().int().min(0).max(2_000_000_000);

export const productSearchQuery = z
  .strictObject({
    q: z.string().trim().min(1).max(200).optional(),
    minPrice: price.optional(),
    maxPrice: price.optional(),
    currency: currencyCode.optional(),
    inStock: z
      .enum(['true', 'false'])
      .transform((v) => v === 'true')
      .optional(),
    limit: searchLimit,
    cursor: searchCursor.optional(),
  })
  .refine((q) => q.minPrice === undefined || q.maxPrice === undefined || q.minPrice <= q.maxPrice, {
    path: ['maxPrice'],
    message: 'must not be below minPrice',
  });

/**
 * GET /v1/products/search: answered from the search index only, so it is as fresh as
 * the CDC pipeline (about a second) and lists active products only. Mount it before
 * the `/:id` routes.
 */
export function productSearchRoutes(search: Pick<SearchEngine, 'searchProducts'>): Router {
  const router = Router();
  router.get('/search', async (req, res) => {
    const query = productSearchQuery.parse(req.query);
    res.json(await answerSearch(() => search.searchProducts(query)));
  });
  return router;
}
