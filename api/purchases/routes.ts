import { Router } from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { merchantOf } from '../../common/auth';
import { badRequest } from '../../common/errors';
import { PURCHASE_STATUSES } from '../../workflows/contract';
import { containsCardNumber } from './card-data';
import { createRefund, decideAuthorization, getRefund, listRefunds } from './operations';
import type { OperationAnswer, OperationDeps } from './operations';
import {
  captureBody,
  createPurchaseBody,
  idempotencyKeyHeader,
  refundBody,
  voidBody,
} from './request';
import { searchPurchasesHandler } from './search';
import { createPurchase, getPurchase, listPurchases } from './service';

const listQuery = z.strictObject({
  customerId: z.string().min(1).max(255).optional(),
  status: z.enum(PURCHASE_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(500).optional(),
});

const purchaseId = z.string().regex(/^pur_[0-9a-f]{32}$/);
const refundId = z.string().regex(/^re_[0-9a-f]{32}$/);

function idempotencyKeyOf(req: Request): string {
  const key = idempotencyKeyHeader.safeParse(req.header('idempotency-key'));
  if (!key.success) {
    throw badRequest('invalid_idempotency_key', key.error.issues[0]?.message ?? 'invalid');
  }
  return key.data;
}

function purchaseIdOf(req: Request): string {
  const id = purchaseId.safeParse(req.params.id);
  if (!id.success) throw badRequest('invalid_purchase_id', 'the purchase id is malformed');
  return id.data;
}

function send<T>(res: Response, answer: OperationAnswer<T>): void {
  if (answer.replayed) res.setHeader('Idempotent-Replayed', 'true');
  res.status(answer.status).json(answer.body);
}

export function purchaseRoutes(deps: OperationDeps): Router {
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
    const key = idempotencyKeyOf(req);
    const body = createPurchaseBody.parse(req.body);
    const { purchase, replayed } = await createPurchase(deps, merchantId, key, body);
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
    res.json(await getPurchase(deps, merchantId, purchaseIdOf(req)));
  });

  router.post('/:id/capture', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    const id = purchaseIdOf(req);
    const key = idempotencyKeyOf(req);
    const { amount } = captureBody.parse(req.body ?? {});
    send(res, await decideAuthorization(deps, merchantId, id, key, { kind: 'capture', amount }));
  });

  router.post('/:id/void', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    const id = purchaseIdOf(req);
    const key = idempotencyKeyOf(req);
    voidBody.parse(req.body ?? {});
    send(res, await decideAuthorization(deps, merchantId, id, key, { kind: 'void' }));
  });

  router.post('/:id/refunds', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    const id = purchaseIdOf(req);
    const key = idempotencyKeyOf(req);
    const body = refundBody.parse(req.body ?? {});
    send(res, await createRefund(deps, merchantId, id, key, body));
  });

  router.get('/:id/refunds', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    res.json(await listRefunds(deps, merchantId, purchaseIdOf(req)));
  });

  return router;
}

export function refundRoutes(deps: OperationDeps): Router {
  const router = Router();
  router.get('/:id', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    const id = refundId.safeParse(req.params.id);
    if (!id.success) throw badRequest('invalid_refund_id', 'the refund id is malformed');
    res.json(await getRefund(deps, merchantId, id.data));
  });
  return router;
}
