import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { getDMMF } from '@prisma/internals';
import mariadb from 'mariadb';
import { mariadbOptions } from '../../common/db';
import { migrate } from '../../ops/migrate';
import { testConfig } from '../config';

// The column type MariaDB reports for each Prisma scalar, by native type when one is set.
function expectedDataType(type: string, nativeType: string | undefined): string {
  if (nativeType) return nativeType.toLowerCase().replace(/^unsigned/, '');
  const defaults: Record<string, string> = {
    String: 'varchar',
    Int: 'int',
    BigInt: 'bigint',
    Boolean: 'tinyint',
    DateTime: 'datetime',
    Json: 'longtext',
    Decimal: 'decimal',
  };
  return defaults[type] ?? `unknown:${type}`;
}

type Column = { TABLE_NAME: string; COLUMN_NAME: string; DATA_TYPE: string; IS_NULLABLE: string };
type IndexColumn = {
  TABLE_NAME: string;
  INDEX_NAME: string;
  NON_UNIQUE: number | bigint;
  COLUMN_NAME: string;
};

test('when the migrations are applied to an empty database, then it matches schema.prisma', async () => {
  const dbName = `gateway_schema_${randomBytes(4).toString('hex')}`;
  const base = mariadbOptions(testConfig.DATABASE_URL);
  const admin = await mariadb.createConnection({ ...base, database: undefined });
  await admin.query(`CREATE DATABASE \`${dbName}\``);
  try {
    const url = new URL(testConfig.DATABASE_URL);
    url.pathname = `/${dbName}`;
    await migrate(url.toString());
    const dmmf = await getDMMF({ datamodel: await readFile('prisma/schema.prisma', 'utf8') });

    const columns = await admin.query<Column[]>(
      `SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_NULLABLE FROM information_schema.COLUMNS
       WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> '_prisma_migrations'`,
      [dbName],
    );
    const indexColumns = await admin.query<IndexColumn[]>(
      `SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS
       WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> '_prisma_migrations' ORDER BY SEQ_IN_INDEX`,
      [dbName],
    );

    const fromDb = columns
      .map(
        (c) =>
          `${c.TABLE_NAME}.${c.COLUMN_NAME} ${c.DATA_TYPE} ${c.IS_NULLABLE === 'NO' ? 'required' : 'optional'}`,
      )
      .sort();
    const tableOf = new Map(dmmf.datamodel.models.map((m) => [m.name, m.dbName ?? m.name]));
    const fromSchema = dmmf.datamodel.models
      .flatMap((m) =>
        m.fields
          .filter((f) => f.kind === 'scalar' || f.kind === 'enum')
          .map((f) => {
            const native = Array.isArray(f.nativeType) ? String(f.nativeType[0]) : undefined;
            const type = f.kind === 'enum' ? 'enum' : expectedDataType(f.type, native);
            return `${tableOf.get(m.name)}.${f.dbName ?? f.name} ${type} ${f.isRequired ? 'required' : 'optional'}`;
          }),
      )
      .sort();
    expect(fromDb).toEqual(fromSchema);

    const dbIndexes = new Map<string, string[]>();
    for (const ic of indexColumns) {
      const kind = ic.INDEX_NAME === 'PRIMARY' ? 'id' : Number(ic.NON_UNIQUE) ? 'normal' : 'unique';
      const key = `${ic.TABLE_NAME} ${kind}`;
      const name = `${key}:${ic.INDEX_NAME}`;
      dbIndexes.set(name, [...(dbIndexes.get(name) ?? []), ic.COLUMN_NAME]);
    }
    const dbIndexSet = [...dbIndexes]
      .map(([name, cols]) => `${name.split(':')[0]}(${cols.join(',')})`)
      .sort();
    const columnName = (model: string, field: string): string =>
      dmmf.datamodel.models.find((m) => m.name === model)?.fields.find((f) => f.name === field)
        ?.dbName ?? field;
    const schemaIndexSet = dmmf.datamodel.indexes
      .map(
        (i) =>
          `${tableOf.get(i.model)} ${i.type}(${i.fields.map((f) => columnName(i.model, f.name)).join(',')})`,
      )
      .sort();
    // Foreign keys get a supporting index in MariaDB; Prisma lists those relation indexes too.
    expect(dbIndexSet).toEqual(schemaIndexSet);
  } finally {
    await admin.query(`DROP DATABASE \`${dbName}\``);
    await admin.end();
  }
});
