import type { Express } from 'express';
import { requireRole } from '../common/auth';
import { createHttpApp } from '../common/http';
import { codecRoutes } from './codec-routes';
import type { OperationDeps } from './purchases/operations';
import { purchaseRoutes, refundRoutes } from './purchases/routes';

export function createApiApp(deps: OperationDeps): Express {
  const merchant = requireRole(deps.prisma, 'merchant', deps.config.API_KEY_CACHE_SECONDS);
  return createHttpApp(deps.logger, (app) => {
    app.use('/v1/purchases', merchant, purchaseRoutes(deps));
    app.use('/v1/refunds', merchant, refundRoutes(deps));
    app.use('/codec', codecRoutes(deps));
  });
}
