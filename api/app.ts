import type { Express } from 'express';
import { requireRole } from '../common/auth';
import { createHttpApp } from '../common/http';
import { createWebhookStore } from '../webhooks/store';
import { codecRoutes } from './codec-routes';
import type { OperationDeps } from './purchases/operations';
import { purchaseRoutes, refundRoutes } from './purchases/routes';
import { eventRoutes, webhookEndpointRoutes } from './webhooks/routes';

export function createApiApp(deps: OperationDeps): Express {
  const merchant = requireRole(deps.prisma, 'merchant', deps.config.API_KEY_CACHE_SECONDS);
  const webhooks = {
    store: createWebhookStore(deps),
    workflows: deps.workflows,
    config: deps.config,
  };
  return createHttpApp(deps.logger, (app) => {
    app.use('/v1/purchases', merchant, purchaseRoutes(deps));
    app.use('/v1/refunds', merchant, refundRoutes(deps));
    app.use('/v1/webhook-endpoints', merchant, webhookEndpointRoutes(webhooks));
    app.use('/v1/events', merchant, eventRoutes(webhooks));
    app.use('/codec', codecRoutes(deps));
  });
}
