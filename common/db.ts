import { PrismaMariaDb } from '@prisma/adapter-mariadb';
import { createPool } from 'mariadb';
import type { ConnectionConfig, Pool, PoolConnection } from 'mariadb';
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
export type { Pool as SqlPool };

/**
 * A pool of the bare driver, for hot paths where Prisma's CPU per query is the cost. It
 * allows several statements in one query (see transact), so every value must be a `?`
 * placeholder, never text spliced into the SQL.
 */
export function createSqlPool(databaseUrl: string, connectionLimit = 10): Pool {
  return createPool({
    ...mariadbOptions(databaseUrl),
    connectionLimit,
    multipleStatements: true,
    // As Prisma's pool: a burst waits this long for a connection, then gets 503.
    acquireTimeout: 2_000,
  });
}

/** The driver's error numbers that the code acts on. */
export const SQL_ERRNO = {
  duplicateKey: 1062, // ER_DUP_ENTRY
  deadlock: 1213, // ER_LOCK_DEADLOCK
  poolTimeout: 45028, // the driver's ER_GET_CONNECTION_TIMEOUT: no free connection in time
} as const;

/** One SQL statement and the values of its `?` placeholders. */
export interface Statement {
  sql: string;
  values: unknown[];
}

/**
 * Runs the statements as one transaction in one round trip: BEGIN, the statements and
 * COMMIT go to the server as a single multi-statement query. The server stops at the
 * first statement that fails, so COMMIT never runs after a failure, and the ROLLBACK
 * that follows ends the transaction before the connection is reused. Separate queries
 * would not be safe here: the driver pipelines them without waiting for answers, so a
 * COMMIT sent behind a failed INSERT would commit the rest.
 *
 * Dates are written as UTC, as Prisma writes them, whatever the process's time zone.
 */
export async function transact(pool: Pool, statements: Statement[]): Promise<void> {
  const sql = ['BEGIN', ...statements.map((s) => s.sql), 'COMMIT'].join(';\n');
  const values = statements.flatMap((s) => s.values.map(utcValue));
  const conn = await pool.getConnection();
  let reusable = true;
  try {
    await conn.query(sql, values);
  } catch (err) {
    // A connection that cannot roll back might hold the transaction open: drop it.
    reusable = await conn.query('ROLLBACK').then(
      () => true,
      () => false,
    );
    throw err;
  } finally {
    if (reusable) await conn.release();
    else conn.destroy();
  }
}

const utcValue = (v: unknown): unknown =>
  v instanceof Date ? v.toISOString().slice(0, 23).replace('T', ' ') : v;

/** A DATETIME read with `dateStrings: true` (`2026-11-28 01:22:50.251`), taken as UTC. */
export const utcDate = (s: string): Date => new Date(`${s.replace(' ', 'T')}Z`);

/**
 * Runs `work` in one interactive transaction on one connection of `pool`: committed if it
 * returns, rolled back if it throws. For steps that decide on what they read (the
 * workflow's admission); a fixed set of writes goes through transact, in one round trip.
 */
export async function withTransaction<T>(
  pool: Pool,
  work: (conn: PoolConnection) => Promise<T>,
): Promise<T> {
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    const result = await work(conn);
    await conn.commit();
    return result;
  } catch (err) {
    await conn.rollback().catch(() => undefined);
    throw err;
  } finally {
    await conn.release();
  }
}

export type { PoolConnection };
