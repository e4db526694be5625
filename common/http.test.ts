import { Prisma } from '../generated/prisma/client';
import { createHttpApp, listen } from './http';
import { createLogger } from './logger';

const busy = (code: string) =>
  new Prisma.PrismaClientKnownRequestError('no connection in time', {
    code,
    clientVersion: Prisma.prismaVersion.client,
  });

test.each(['P2024', 'P2028'])(
  'when the database pool has no connection in time (%s), then 503 with Retry-After',
  async (code) => {
    const app = createHttpApp(createLogger('t', 'silent'), (a) => {
      a.get('/busy', () => {
        throw busy(code);
      });
    });
    const http = await listen(app, 0);
    try {
      const res = await fetch(`http://127.0.0.1:${http.port}/busy`);
      const body = (await res.json()) as { error: { code: string; message: string } };

      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(body.error.code).toBe('service_unavailable');
      expect(body.error.message).not.toContain('connection');
    } finally {
      await http.close();
    }
  },
);

test('when a route fails unexpectedly, then 500 without the error text', async () => {
  const app = createHttpApp(createLogger('t', 'silent'), (a) => {
    a.get('/boom', () => {
      throw busy('P2002');
    });
  });
  const http = await listen(app, 0);
  try {
    const res = await fetch(`http://127.0.0.1:${http.port}/boom`);
    const text = await res.text();

    expect(res.status).toBe(500);
    expect(text).not.toContain('no connection in time');
  } finally {
    await http.close();
  }
});
