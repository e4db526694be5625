import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { PrismaClient } from './db';
import { unauthorized } from './errors';

export type Principal = { role: 'merchant'; merchantId: string } | { role: 'admin' };

declare module 'express-serve-static-core' {
  interface Locals {
    principal?: Principal;
  }
}

export const hashApiKey = (key: string): string => createHash('sha256').update(key).digest('hex');

/**
 * Resolves `Authorization: Bearer <key>` to a principal of the wanted role, or 401.
 * A known key is remembered for `cacheSeconds` (0: every request asks the database), so
 * a deleted key keeps working that long. Unknown keys are never remembered.
 */
export function requireRole(
  prisma: PrismaClient,
  role: Principal['role'],
  cacheSeconds: number,
): RequestHandler {
  const known = new Map<string, { principal: Principal; until: number }>();
  const lookup = async (keyHash: string): Promise<Principal | undefined> => {
    const cached = known.get(keyHash);
    if (cached && cached.until > Date.now()) return cached.principal;
    const row = await prisma.apiKey.findUnique({ where: { keyHash } });
    if (!row) return undefined;
    const principal: Principal =
      row.role === 'merchant' && row.merchantId
        ? { role: 'merchant', merchantId: row.merchantId }
        : { role: 'admin' };
    if (cacheSeconds > 0)
      known.set(keyHash, { principal, until: Date.now() + cacheSeconds * 1000 });
    return principal;
  };
  return (req, res, next) => {
    const match = /^Bearer ([\x21-\x7e]{1,200})$/.exec(req.header('authorization') ?? '');
    if (!match?.[1]) {
      next(unauthorized());
      return;
    }
    lookup(hashApiKey(match[1]))
      .then((principal) => {
        if (principal?.role !== role) return next(unauthorized());
        res.locals.principal = principal;
        next();
      })
      .catch(next);
  };
}

export function merchantOf(principal: Principal | undefined): string {
  if (principal?.role !== 'merchant') throw unauthorized();
  return principal.merchantId;
}
