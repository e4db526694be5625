import type { PrismaClient } from './db';
import { createHttpApp, listen } from './http';
import { hashApiKey, requireRole } from './auth';
import { createLogger } from './logger';

/** A fake key table that counts its lookups. */
function fakeKeys(rows: Record<string, { role: string; merchantId: string | null }>) {
  const counter = { lookups: 0 };
  const byHash = new Map(Object.entries(rows).map(([k, v]) => [hashApiKey(k), v]));
  const prisma = {
    apiKey: {
      findUnique: ({ where }: { where: { keyHash: string } }) => {
        counter.lookups++;
        return Promise.resolve(byHash.get(where.keyHash) ?? null);
      },
    },
  } as unknown as PrismaClient;
  return { prisma, counter, byHash };
}

async function withApp(
  prisma: PrismaClient,
  cacheSeconds: number,
  run: (call: (key: string) => Promise<number>) => Promise<void>,
) {
  const app = createHttpApp(createLogger('t', 'silent'), (a) => {
    a.get('/me', requireRole(prisma, 'merchant', cacheSeconds), (_req, res) => {
      res.json(res.locals.principal);
    });
  });
  const http = await listen(app, 0);
  const call = async (key: string) =>
    (
      await fetch(`http://127.0.0.1:${http.port}/me`, {
        headers: { authorization: `Bearer ${key}` },
      })
    ).status;
  try {
    await run(call);
  } finally {
    await http.close();
  }
}

test('when a known key is used again within the cache time, then the database is asked once', async () => {
  const { prisma, counter } = fakeKeys({ sk_a: { role: 'merchant', merchantId: 'm_a' } });
  await withApp(prisma, 10, async (call) => {
    expect([await call('sk_a'), await call('sk_a'), await call('sk_a')]).toEqual([200, 200, 200]);
  });
  expect(counter.lookups).toBe(1);
});

test('when an unknown key is tried again, then every try asks the database and gets 401', async () => {
  const { prisma, counter } = fakeKeys({});
  await withApp(prisma, 10, async (call) => {
    expect([await call('sk_x'), await call('sk_x')]).toEqual([401, 401]);
  });
  expect(counter.lookups).toBe(2);
});

test('when the cache is off, then a deleted key stops working at once', async () => {
  const { prisma, counter, byHash } = fakeKeys({ sk_a: { role: 'merchant', merchantId: 'm_a' } });
  await withApp(prisma, 0, async (call) => {
    expect(await call('sk_a')).toBe(200);
    byHash.clear();
    expect(await call('sk_a')).toBe(401);
  });
  expect(counter.lookups).toBe(2);
});

test('when an admin key calls a merchant route, then 401 even from the cache', async () => {
  const { prisma } = fakeKeys({ sk_admin: { role: 'admin', merchantId: null } });
  await withApp(prisma, 10, async (call) => {
    expect([await call('sk_admin'), await call('sk_admin')]).toEqual([401, 401]);
  });
});
