import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import mariadb from 'mariadb';
import { mariadbOptions } from '../common/db';

/*
 * Applies prisma/migrations/<stamp>_<name>/migration.sql in order and records each in
 * Prisma's own `_prisma_migrations` table, so `prisma migrate deploy` agrees on machines
 * where Prisma's schema engine can be had. Here it cannot be downloaded.
 */
const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS _prisma_migrations (
  id VARCHAR(36) NOT NULL PRIMARY KEY,
  checksum VARCHAR(64) NOT NULL,
  finished_at DATETIME(3) NULL,
  migration_name VARCHAR(255) NOT NULL,
  logs TEXT NULL,
  rolled_back_at DATETIME(3) NULL,
  started_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  applied_steps_count INTEGER UNSIGNED NOT NULL DEFAULT 0
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`;

export const MIGRATIONS_DIR = resolve('prisma', 'migrations');

export async function migrate(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<string[]> {
  const conn = await mariadb.createConnection({
    ...mariadbOptions(databaseUrl),
    multipleStatements: true,
  });
  try {
    await conn.query(MIGRATIONS_TABLE);
    const done = new Map<string, string>(
      (
        await conn.query<{ migration_name: string; checksum: string }[]>(
          'SELECT migration_name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
        )
      ).map((r) => [r.migration_name, r.checksum]),
    );
    const names = (await readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    const applied: string[] = [];
    for (const name of names) {
      const sql = await readFile(join(dir, name, 'migration.sql'), 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      const previous = done.get(name);
      if (previous !== undefined) {
        if (previous !== checksum) {
          throw new Error(`migration ${name} was edited after it was applied`);
        }
        continue;
      }
      const id = randomUUID();
      await conn.query(
        'INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES (?, ?, ?)',
        [id, checksum, name],
      );
      // MariaDB commits DDL implicitly, so a failed migration stays recorded as unfinished.
      await conn.query(sql);
      await conn.query(
        'UPDATE _prisma_migrations SET finished_at = CURRENT_TIMESTAMP(3), applied_steps_count = 1 WHERE id = ?',
        [id],
      );
      applied.push(name);
    }
    return applied;
  } finally {
    await conn.end();
  }
}
