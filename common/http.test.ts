import { brotliCompressSync, gzipSync } from 'node:zlib';
import type { Express } from 'express';
import { Prisma } from '../generated/prisma/client';
import { createHttpApp, listen } from './http';
import { createLogger } from './logger';

const busy = (code: string) =>
  new Prisma.PrismaClientKnownRequestError('no connection in time', {
    code,
    clientVersion: Prisma.prismaVersion.client,
  });

interface ErrorBody {
  error: { code: string; message: string; details: unknown; requestId: string };
}

/** An app with an echo route for bodies and one for path ids, on port 0 for one test. */
async function withApp(
  run: (base: string, port: number) => Promise<void>,
  mount: (app: Express) => void = () => undefined,
): Promise<void> {
  const app = createHttpApp(createLogger('t', 'silent'), (a) => {
    a.post('/echo', (req, res) => {
      res.json({ body: req.body as unknown });
    });
    a.get('/things/:id', (req, res) => {
      res.json({ id: req.params.id });
    });
    mount(a);
  });
  const http = await listen(app, 0);
  try {
    await run(`http://127.0.0.1:${http.port}`, http.port);
  } finally {
    await http.close();
  }
}

async function postRaw(
  base: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: ErrorBody }> {
  const res = await fetch(`${base}/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, json: (await res.json()) as ErrorBody };
}

test.each(['P2024', 'P2028'])(
  'when the database pool has no connection in time (%s), then 503 with Retry-After',
  async (code) => {
    await withApp(
      async (base) => {
        const res = await fetch(`${base}/busy`);
        const body = (await res.json()) as ErrorBody;

        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(body.error.code).toBe('service_unavailable');
        expect(body.error.message).not.toContain('connection');
      },
      (a) =>
        a.get('/busy', () => {
          throw busy(code);
        }),
    );
  },
);

test('when a route fails unexpectedly, then 500 without the error text', async () => {
  await withApp(
    async (base) => {
      const res = await fetch(`${base}/boom`);
      const text = await res.text();

      expect(res.status).toBe(500);
      expect(text).not.toContain('no connection in time');
    },
    (a) =>
      a.get('/boom', () => {
        throw busy('P2002');
      }),
  );
});

describe('bad input is a 4xx with the error body', () => {
  test.each(['%ff', '%c0%ae', '%ED%A0%80', 'ok%'])(
    'when a path id has malformed percent-encoding (%s), then 400 malformed_path',
    async (id) => {
      await withApp(async (base) => {
        const res = await fetch(`${base}/things/${id}`);
        const body = (await res.json()) as ErrorBody;

        expect(res.status).toBe(400);
        expect(body.error.code).toBe('malformed_path');
        expect(body.error.requestId).toEqual(expect.any(String));
      });
    },
  );

  test.each([
    ['gzip', Buffer.from('this is not gzip')],
    ['gzip', gzipSync('{"a":1}').subarray(0, 12)],
    ['br', Buffer.from('this is not brotli at all')],
    ['deflate', Buffer.from('this is not deflate')],
  ])('when a %s body is corrupt, then 400 malformed_body', async (encoding, bytes) => {
    await withApp(async (base) => {
      const res = await postRaw(base, bytes, { 'content-encoding': encoding });

      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe('malformed_body');
    });
  });

  test.each(['compress', 'zstd', 'gzip, br'])(
    'when the Content-Encoding is %s, then 415 unsupported_content_encoding',
    async (encoding) => {
      await withApp(async (base) => {
        const res = await postRaw(base, '{}', { 'content-encoding': encoding });

        expect(res.status).toBe(415);
        expect(res.json.error.code).toBe('unsupported_content_encoding');
      });
    },
  );

  test.each([
    ['gzip', gzipSync('{"a":1}')],
    ['br', brotliCompressSync('{"a":1}')],
  ])('when a %s body is sound, then it is read', async (encoding, bytes) => {
    await withApp(async (base) => {
      const res = await fetch(`${base}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        body: bytes,
      });

      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ body: { a: 1 } });
    });
  });
});
