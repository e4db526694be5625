import type { Express } from 'express';
import { requireRole } from '../common/auth';
import { createHttpApp } from '../common/http';
import { codecRoutes } from './codec-routes';
import { purchaseRoutes } from './purchases/routes';
import type { PurchaseDeps } from './purchases/service';

export function createApiApp(deps: PurchaseDeps): Express {
  return createHttpApp(deps.logger, (app) => {
    app.use(
      '/v1/purchases',
      requireRole(deps.prisma, 'merchant', deps.config.API_KEY_CACHE_SECONDS),
      purchaseRoutes(deps),
    );
    app.use('/codec', codecRoutes(deps));
  });
}
