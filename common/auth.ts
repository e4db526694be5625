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

/** Resolves `Authorization: Bearer <key>` to a principal of the wanted role, or 401. */
export function requireRole(prisma: PrismaClient, role: Principal['role']): RequestHandler {
  return (req, res, next) => {
    const match = /^Bearer ([\x21-\x7e]{1,200})$/.exec(req.header('authorization') ?? '');
    if (!match?.[1]) {
      next(unauthorized());
      return;
    }
    prisma.apiKey
      .findUnique({ where: { keyHash: hashApiKey(match[1]) } })
      .then((row) => {
        if (!row || row.role !== role) return next(unauthorized());
        res.locals.principal =
          row.role === 'merchant' && row.merchantId
            ? { role: 'merchant', merchantId: row.merchantId }
            : { role: 'admin' };
        next();
      })
      .catch(next);
  };
}

export function merchantOf(principal: Principal | undefined): string {
  if (principal?.role !== 'merchant') throw unauthorized();
  return principal.merchantId;
}
