import { randomUUID } from 'node:crypto';
import { createPrisma } from '../../common/db';
import { testConfig } from '../config';

const prisma = createPrisma(testConfig.DATABASE_URL, 2);
afterAll(() => prisma.$disconnect());

test('when a product is written through Prisma, then it reads back with integer minor units', async () => {
  const sku = `it-${randomUUID()}`;

  const created = await prisma.product.create({
    data: {
      sku,
      name: 'Café torrado',
      description: 'grãos',
      priceMinor: 1999,
      currency: 'BRL',
      stock: 5,
    },
  });
  const read = await prisma.product.findUnique({ where: { sku } });

  expect(read).toMatchObject({
    id: created.id,
    priceMinor: 1999,
    currency: 'BRL',
    version: 1,
    active: true,
  });
  await prisma.product.delete({ where: { id: created.id } });
});
