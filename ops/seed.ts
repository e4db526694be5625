import { hashApiKey } from '../common/auth';
import type { PrismaClient } from '../common/db';

/** Local-stack identities. Never seeded when NODE_ENV=production. */
export const LOCAL_KEYS = [
  { key: 'sk_test_local', role: 'merchant', merchantId: 'm_local' },
  { key: 'sk_test_other', role: 'merchant', merchantId: 'm_other' },
  { key: 'sk_admin_local', role: 'admin', merchantId: null },
] as const;

export async function seedLocal(prisma: PrismaClient): Promise<void> {
  for (const id of ['m_local', 'm_other']) {
    await prisma.merchant.upsert({ where: { id }, create: { id, name: id }, update: {} });
  }
  for (const k of LOCAL_KEYS) {
    const keyHash = hashApiKey(k.key);
    await prisma.apiKey.upsert({
      where: { keyHash },
      create: { keyHash, role: k.role, merchantId: k.merchantId },
      update: {},
    });
  }
}
