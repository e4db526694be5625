import { Router } from 'express';
import { z } from 'zod';
import { merchantOf } from '../../common/auth';
import { badRequest } from '../../common/errors';
import { PURCHASE_STATUSES } from '../../workflows/contract';
import { containsCardNumber } from './card-data';
import { createPurchaseBody, idempotencyKeyHeader } from './request';
import { searchPurchasesHandler } from './search';
import { createPurchase, getPurchase, listPurchases } from './service';
import type { PurchaseDeps } from './service';

const listQuery = z.strictObject({
  customerId: z.string().min(1).max(255).optional(),
  status: z.enum(PURCHASE_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(500).optional(),
});

const purchaseId = z.string().regex(/^pur_[0-9a-f]{32}$/);

export function purchaseRoutes(deps: PurchaseDeps): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    // Checked before anything else so a card number never reaches a log or a table.
    if (containsCardNumber(req.body)) {
      throw badRequest(
        'raw_card_data_rejected',
        'raw card numbers are not accepted; send a card token from your payment provider',
      );
    }
    const key = idempotencyKeyHeader.safeParse(req.header('idempotency-key'));
    if (!key.success) {
      throw badRequest('invalid_idempotency_key', key.error.issues[0]?.message ?? 'invalid');
    }
    const body = createPurchaseBody.parse(req.body);
    const { purchase, replayed } = await createPurchase(deps, merchantId, key.data, body);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(202).location(purchase.links.self).json(purchase);
  });

  router.get('/', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    const filter = listQuery.parse(req.query);
    res.json(await listPurchases(deps, merchantId, filter));
  });

  // Before /:id, which would take "search" for an id.
  router.get('/search', searchPurchasesHandler(deps.search));

  router.get('/:id', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    const id = purchaseId.safeParse(req.params.id);
    if (!id.success) throw badRequest('invalid_purchase_id', 'the purchase id is malformed');
    res.json(await getPurchase(deps, merchantId, id.data));
  });

  return router;
}
