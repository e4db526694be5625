import { PrismaMariaDb } from '@prisma/adapter-mariadb';
import type { ConnectionConfig } from 'mariadb';
import { PrismaClient } from '../generated/prisma/client';

export function mariadbOptions(databaseUrl: string): ConnectionConfig {
  const url = new URL(databaseUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: url.pathname.replace(/^\//, ''),
  };
}

/** A Prisma client over the MariaDB driver adapter (no query-engine binary needed). */
export function createPrisma(databaseUrl: string, connectionLimit = 10): PrismaClient {
  return new PrismaClient({
    adapter: new PrismaMariaDb({ ...mariadbOptions(databaseUrl), connectionLimit }),
  });
}

export type { PrismaClient };
