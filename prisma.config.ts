import { defineConfig } from 'prisma/config';

// Used by the Prisma CLI only (generate, and migrate deploy where its engine can be had).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'mysql://gateway:gateway@127.0.0.1:3306/gateway' },
});
