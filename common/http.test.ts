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

async function postRaw<T = ErrorBody>(
  base: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
  path = '/echo',
): Promise<{ status: number; json: T }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, json: (await res.json()) as T };
}

const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

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
      const res = await postRaw<unknown>(base, bytes, { 'content-encoding': encoding });

      expect(res.status).toBe(200);
      expect(res.json).toEqual({ body: { a: 1 } });
    });
  });

  test.each([
    ['33 arrays', nested(33)],
    ['20,000 arrays', nested(20_000)],
    ['10,000 objects', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)],
  ])('when the JSON nests %s deep, then 400 json_too_deep', async (_name, text) => {
    let seen: unknown = 'untouched';
    await withApp(
      async (base) => {
        const res = await postRaw(base, text, {}, '/walk');

        expect(res.status).toBe(400);
        expect(res.json.error.code).toBe('json_too_deep');
        expect(seen).toBe('untouched');
      },
      (a) =>
        a.post('/walk', (req, res) => {
          seen = req.body;
          res.json({});
        }),
    );
  });

  test('when the JSON nests 32 levels deep, then it is accepted', async () => {
    await withApp(async (base) => {
      const res = await postRaw<unknown>(base, nested(32));

      expect(res.status).toBe(200);
    });
  });

  test.each([
    ['a value', '{"customerId":"\\ud800"}', 'customerId'],
    ['a nested value', '{"items":[{"productId":"a\\udfffb"}]}', 'items.0.productId'],
    ['a key', '{"metadata":{"\\udc00":"x"}}', 'metadata'],
    ['an array element', '{"tags":["ok","\\ud83d"]}', 'tags.1'],
  ])(
    'when %s holds a lone surrogate, then 400 invalid_unicode naming its path',
    async (_name, text, path) => {
      await withApp(async (base) => {
        const res = await postRaw(base, text);

        expect(res.status).toBe(400);
        expect(res.json.error.code).toBe('invalid_unicode');
        const details = res.json.error.details as { path: string }[];
        expect(details.map((d) => d.path)).toEqual([path]);
      });
    },
  );

  test('when a string holds a surrogate pair, then it is accepted', async () => {
    await withApp(async (base) => {
      const res = await postRaw<unknown>(base, '{"name":"caf\\u00e9 \\ud83d\\ude00"}');

      expect(res.status).toBe(200);
      expect(res.json).toEqual({ body: { name: 'café 😀' } });
    });
  });
});
