import type { Express } from 'express';
import { createHttpApp } from '../common/http';
import type { SearchEngine } from '../search/engine';
import type { CatalogDeps } from './catalog';
import { productRoutes } from './routes';
import { productSearchRoutes } from './search-routes';

export function createProdutoApp(
  deps: CatalogDeps & { search?: Pick<SearchEngine, 'searchProducts'> },
): Express {
  return createHttpApp(deps.logger, (app) => {
    // Before productRoutes, whose GET /:id would take "search" for an id.
    if (deps.search) app.use('/v1/products', productSearchRoutes(deps.search));
    app.use('/v1/products', productRoutes(deps));
  });
}
