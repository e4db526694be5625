import type { PrismaClient } from '../common/db';
import { conflict, notFound } from '../common/errors';
import type { Logger } from '../common/logger';
import { Prisma } from '../generated/prisma/client';
import { productDoc } from '../search/documents';
import type { ProductDoc } from '../search/documents';
import { encodeCursor, preconditionFailed } from './contract';
import type { NewProduct, ProductChanges } from './contract';

export interface CatalogDeps {
  prisma: PrismaClient;
  logger: Logger;
}

/** A product as the API shows it: the same JSON the search index holds. */
export type ProductView = ProductDoc;

export async function createProduct(deps: CatalogDeps, input: NewProduct): Promise<ProductView> {
  try {
    const row = await deps.prisma.product.create({ data: input });
    deps.logger.info({ productId: row.id, sku: row.sku }, 'product created');
    return productDoc(row);
  } catch (err) {
    if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
      throw conflict('sku_taken', `a product with sku ${input.sku} already exists`, {
        sku: input.sku,
      });
    }
    throw err;
  }
}

export async function getProduct(
  deps: Pick<CatalogDeps, 'prisma'>,
  id: string,
): Promise<ProductView> {
  const row = await deps.prisma.product.findUnique({ where: { id } });
  if (!row) throw notFound('product');
  return productDoc(row);
}

/**
 * Applies `changes` only if the product is still at `expectedVersion`. The version check
 * and the increment are one UPDATE, so of several writers holding the same ETag exactly
 * one wins; the read-back runs in the same transaction and so sees that write.
 */
export async function updateProduct(
  deps: CatalogDeps,
  id: string,
  expectedVersion: number,
  changes: ProductChanges,
): Promise<ProductView> {
  const row = await deps.prisma.$transaction(async (tx) => {
    const { count } = await tx.product.updateMany({
      where: { id, version: expectedVersion },
      data: { ...changes, version: { increment: 1 } },
    });
    const current = await tx.product.findUnique({ where: { id } });
    if (!current) throw notFound('product');
    if (count === 0) throw preconditionFailed(current.version);
    return current;
  });
  deps.logger.info({ productId: id, version: row.version }, 'product updated');
  return productDoc(row);
}

export type RemoveOutcome = { deleted: true } | { deleted: false; product: ProductView };

/**
 * Deletes a product nobody bought. One that purchase items reference stays, for their
 * history, and is deactivated instead so it can no longer be bought.
 */
export async function removeProduct(deps: CatalogDeps, id: string): Promise<RemoveOutcome> {
  const outcome = await deps.prisma.$transaction(async (tx): Promise<RemoveOutcome> => {
    const product = await tx.product.findUnique({ where: { id } });
    if (!product) throw notFound('product');
    const references = await tx.purchaseItem.count({ where: { productId: id } });
    if (references === 0) {
      // deleteMany: a concurrent DELETE that got there first leaves count 0, not an exception.
      const { count } = await tx.product.deleteMany({ where: { id } });
      if (count === 0) throw notFound('product');
      return { deleted: true };
    }
    if (!product.active) return { deleted: false, product: productDoc(product) };
    await tx.product.updateMany({
      where: { id },
      data: { active: false, version: { increment: 1 } },
    });
    const deactivated = await tx.product.findUnique({ where: { id } });
    if (!deactivated) throw notFound('product');
    return { deleted: false, product: productDoc(deactivated) };
  });
  deps.logger.info({ productId: id, deleted: outcome.deleted }, 'product removed');
  return outcome;
}

export interface ProductPage {
  data: ProductView[];
  nextCursor: string | null;
}

/** Ascending by id; `afterId` is the last id of the previous page. */
export async function listProducts(
  deps: Pick<CatalogDeps, 'prisma'>,
  page: { limit: number; afterId?: string },
): Promise<ProductPage> {
  const rows = await deps.prisma.product.findMany({
    where: page.afterId ? { id: { gt: page.afterId } } : {},
    orderBy: { id: 'asc' },
    take: page.limit + 1,
  });
  const data = rows.slice(0, page.limit);
  const last = data[data.length - 1];
  return {
    data: data.map(productDoc),
    nextCursor: rows.length > page.limit && last ? encodeCursor(last.id) : null,
  };
}
