import { randomBytes } from 'node:crypto';
import mariadb from 'mariadb';
import { mariadbOptions } from '../common/db';
import { migrate } from '../ops/migrate';
import { testConfig } from './config';

/**
 * A fresh, migrated database on the stack's MariaDB, for a test whose outbox must not be
 * swept by the stack's own api or by other test files; `drop` removes it.
 */
export async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `gateway_t_${randomBytes(4).toString('hex')}`;
  const admin = await mariadb.createConnection({
    ...mariadbOptions(testConfig.DATABASE_URL),
    database: undefined,
  });
  await admin.query(`CREATE DATABASE \`${name}\``);
  const url = new URL(testConfig.DATABASE_URL);
  url.pathname = `/${name}`;
  await migrate(url.toString());
  return {
    url: url.toString(),
    drop: async () => {
      await admin.query(`DROP DATABASE \`${name}\``);
      await admin.end();
    },
  };
}
