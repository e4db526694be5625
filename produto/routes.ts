import { Router } from 'express';
import { requireRole } from '../common/auth';
import { createProduct, getProduct, listProducts, removeProduct, updateProduct } from './catalog';
import type { CatalogDeps } from './catalog';
import {
  etagOf,
  expectedVersion,
  listQuery,
  newProductBody,
  productChangesBody,
  productPath,
} from './contract';

/** Reads are open; every write needs an admin key. */
export function productRoutes(deps: CatalogDeps): Router {
  const router = Router();
  // Catalog writes are rare; an admin key's removal takes effect at once.
  const admin = requireRole(deps.prisma, 'admin', 0);

  router.post('/', admin, async (req, res) => {
    const product = await createProduct(deps, newProductBody.parse(req.body));
    res
      .status(201)
      .location(`/v1/products/${product.id}`)
      .set('ETag', etagOf(product.version))
      .json(product);
  });

  router.get('/', async (req, res) => {
    const { limit, cursor } = listQuery.parse(req.query);
    res.json(await listProducts(deps, { limit, afterId: cursor }));
  });

  router.get('/:id', async (req, res) => {
    const product = await getProduct(deps, productPath.parse(req.params).id);
    res.set('ETag', etagOf(product.version)).json(product);
  });

  router.patch('/:id', admin, async (req, res) => {
    const changes = productChangesBody.parse(req.body);
    const version = expectedVersion(req.header('if-match'));
    const product = await updateProduct(deps, productPath.parse(req.params).id, version, changes);
    res.set('ETag', etagOf(product.version)).json(product);
  });

  router.delete('/:id', admin, async (req, res) => {
    const outcome = await removeProduct(deps, productPath.parse(req.params).id);
    if (outcome.deleted) {
      res.status(204).end();
      return;
    }
    res
      .set('ETag', etagOf(outcome.product.version))
      .json({ deactivated: true, product: outcome.product });
  });

  return router;
}
