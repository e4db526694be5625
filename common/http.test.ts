import { connect } from 'node:net';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import type { Express } from 'express';
import { SqlError } from 'mariadb';
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

/** Sends bytes as they are over a plain socket and returns all the server wrote back. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the answer still leaves the answer to check.
      if (err.code === 'ECONNRESET' && chunks.length > 0) return;
      reject(err);
    });
    socket.write(request);
  });
}

function parseRawResponse(raw: string): {
  status: number;
  headers: Record<string, string>;
  body: string;
} {
  const [head = '', body = ''] = raw.split('\r\n\r\n', 2);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((l) => [
      l.slice(0, l.indexOf(':')).toLowerCase(),
      l.slice(l.indexOf(':') + 1).trim(),
    ]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

/** What the mariadb pool rejects with once its acquireTimeout runs out. */
const driverTimeout = () =>
  new SqlError(
    'pool timeout: no connection after 2001ms',
    undefined,
    false,
    undefined,
    'HY000',
    45028,
  );

test.each([
  ['Prisma P2024', () => busy('P2024')],
  ['Prisma P2028', () => busy('P2028')],
  ['the driver', driverTimeout],
])(
  'when the database pool has no connection in time (%s), then 503 with Retry-After',
  async (_name, error) => {
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
          throw error();
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

describe('requests the HTTP parser refuses', () => {
  const get = (headers: string): string => `GET /health HTTP/1.1\r\nHost: x\r\n${headers}\r\n`;

  test.each([
    ['a NUL in a header value', 400, 'bad_request', get('X-A: a\0b\r\n')],
    ['a bare CR in a header value', 400, 'bad_request', get('X-A: a\rb\r\n')],
    ['a bare LF inside a header name', 400, 'bad_request', get('X-\nA: b\r\n')],
    [
      'Content-Length with Transfer-Encoding',
      400,
      'bad_request',
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['a space before the colon', 400, 'bad_request', get('X-A : b\r\n')],
    ['20 KB of headers', 431, 'headers_too_large', get(`X-Big: ${'a'.repeat(20 * 1024)}\r\n`)],
    ['a request line that is not HTTP', 400, 'bad_request', 'HELLO\r\n\r\n'],
  ])(
    'when the request has %s, then a complete %d response with a JSON error body and the socket is closed',
    async (_name, status, code, request) => {
      await withApp(async (_base, port) => {
        const raw = await rawExchange(port, request);
        const res = parseRawResponse(raw);

        expect(res.status).toBe(status);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));
        expect(res.headers.connection).toBe('close');
        const body = JSON.parse(res.body) as ErrorBody;
        expect(Object.keys(body.error).sort()).toEqual(['code', 'details', 'message', 'requestId']);
        expect(body.error.code).toBe(code);
        expect(body.error.details).toBeNull();
        expect(body.error.requestId).toMatch(/^[\w-]{36}$/);
        expect(res.headers['x-request-id']).toBe(body.error.requestId);
      });
    },
  );
});
