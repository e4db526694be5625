import type { Express } from 'express';
import { createHttpApp } from '../common/http';
import type { CatalogDeps } from './catalog';
import { productRoutes } from './routes';

export function createProdutoApp(deps: CatalogDeps): Express {
  return createHttpApp(deps.logger, (app) => {
    app.use('/v1/products', productRoutes(deps));
  });
}
