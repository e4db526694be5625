import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import express from 'express';
import type { ErrorRequestHandler, Express, RequestHandler } from 'express';
import { SqlError } from 'mariadb';
import { ZodError } from 'zod';
import { Prisma } from '../generated/prisma/client';
import { SQL_ERRNO } from './db';
import { AppError, badRequest, unavailable } from './errors';
import type { Logger } from './logger';
import { onShutdown } from './shutdown';

export const BODY_LIMIT = '64kb';
/** How deep a JSON body may nest: deeper ones are refused before any route walks them. */
export const MAX_JSON_DEPTH = 32;

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
  }
}

/** An Express app with request ids, strict JSON bodies and the one error mapper. */
export function createHttpApp(logger: Logger, mount: (app: Express) => void): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestId);
  app.use(requireJsonBody);
  app.use(express.json({ limit: BODY_LIMIT, strict: true, type: () => true }));
  app.use(checkJsonBody);
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  mount(app);
  app.use((_req, _res, next) => next(new AppError(404, 'not_found', 'no such route')));
  app.use(errorHandler(logger));
  return app;
}

const requestId: RequestHandler = (req, res, next) => {
  const incoming = req.header('x-request-id');
  req.id = incoming && /^[\w.-]{1,100}$/.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', req.id);
  next();
};

const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = Number(req.header('content-length') ?? 0) > 0 || req.header('transfer-encoding');
  if (hasBody && !req.is('application/json')) {
    next(new AppError(415, 'unsupported_media_type', 'the body must be application/json'));
    return;
  }
  next();
};

interface JsonNode {
  value: unknown;
  depth: number;
  key?: string;
  parent?: JsonNode;
}

const pathOf = (node: JsonNode | undefined): string => {
  const keys: string[] = [];
  for (let n = node; n?.key !== undefined; n = n.parent) keys.push(n.key);
  return keys.reverse().join('.');
};

// With the u flag a well-formed pair reads as one code point, so this finds only lone halves.
const LONE_SURROGATE = /\p{Surrogate}/u;

const invalidUnicode = (path: string, message: string): AppError =>
  badRequest('invalid_unicode', 'the body holds text that is not well-formed Unicode', [
    { path, message },
  ]);

/**
 * Why a parsed body must be refused, if it must: nesting past MAX_JSON_DEPTH (recursive
 * code further on would overflow the stack), or a lone surrogate, which MariaDB's utf8mb4
 * columns reject. Walks with an explicit stack, so no depth can overflow it.
 */
export function jsonBodyProblem(body: unknown): AppError | undefined {
  const stack: JsonNode[] = [{ value: body, depth: 0 }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const { value, depth } = node;
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) return invalidUnicode(pathOf(node), 'has a lone surrogate');
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) {
      return badRequest('json_too_deep', `the body nests deeper than ${MAX_JSON_DEPTH} levels`, {
        maxDepth: MAX_JSON_DEPTH,
      });
    }
    for (const [key, child] of Object.entries(value)) {
      if (LONE_SURROGATE.test(key)) {
        return invalidUnicode(pathOf(node), 'a key has a lone surrogate');
      }
      stack.push({ value: child, depth: depth + 1, key, parent: node });
    }
  }
  return undefined;
}

const checkJsonBody: RequestHandler = (req, _res, next) => {
  next(jsonBodyProblem(req.body));
};

/** What body-parser (http-errors) and the router put on the errors they raise. */
interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
}

function toAppError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) {
    return new AppError(
      400,
      'validation_failed',
      'the request is invalid',
      err.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    );
  }
  // No free database connection in time: a burst, not a fault; the client may retry.
  if (
    (err instanceof Prisma.PrismaClientKnownRequestError &&
      (err.code === 'P2024' || err.code === 'P2028')) ||
    (err instanceof SqlError && err.errno === SQL_ERRNO.poolTimeout)
  ) {
    return unavailable('the service is busy; retry shortly', 1);
  }
  // The router could not percent-decode a path segment (`%ff`, an overlong UTF-8 form).
  if (err instanceof URIError && (err as BodyParserError).status === 400) {
    return badRequest('malformed_path', 'the path is not valid percent-encoded UTF-8');
  }
  const parserError = err as BodyParserError;
  switch (parserError.type) {
    case 'entity.too.large':
      return new AppError(413, 'payload_too_large', `the body is larger than ${BODY_LIMIT}`);
    case 'entity.parse.failed':
      return new AppError(400, 'malformed_json', 'the body is not valid JSON');
    case 'encoding.unsupported':
      return new AppError(
        415,
        'unsupported_content_encoding',
        'the Content-Encoding must be identity, gzip, deflate or br',
      );
    case 'charset.unsupported':
      return new AppError(415, 'unsupported_media_type', 'the body charset is not supported');
  }
  // Any other error body-parser raises is the client's: above all a corrupt or truncated
  // gzip, deflate or br body, which zlib reports with no type.
  const status = parserError.status;
  if (parserError.expose === true && status !== undefined && status >= 400 && status < 500) {
    return status === 400
      ? badRequest('malformed_body', 'the body could not be read; is it corrupt or truncated?')
      : new AppError(status, 'bad_request', 'the request could not be read');
  }
  return undefined;
}

function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const known = toAppError(err);
    if (!known) {
      // No stack, SQL or token goes out; the log keeps the detail under the request id.
      logger.error({ err, requestId: req.id, path: req.path }, 'unhandled error');
    }
    const e = known ?? new AppError(500, 'internal_error', 'an unexpected error occurred');
    res.status(e.status).set(e.headers);
    res.json({
      error: { code: e.code, message: e.message, details: e.details ?? null, requestId: req.id },
    });
  };
}

/** Listens on `host` (loopback unless told otherwise); `close` stops accepting and waits for requests in flight. */
export async function listen(
  app: Express,
  port: number,
  host = '127.0.0.1',
): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  server.on('clientError', answerClientError);
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const close = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeIdleConnections();
    });
  return { server, port: bound, close };
}

const parserRefusals: Record<string, { status: number; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'headers_too_large',
    message: 'the request headers are too large',
  },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: {
    status: 413,
    code: 'payload_too_large',
    message: 'the chunk extensions are too large',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'request_timeout',
    message: 'the request took too long to arrive',
  },
};

/**
 * Node's HTTP parser refused the request before Express saw it (a CR, LF or NUL in a
 * header, Content-Length with Transfer-Encoding, headers over the limit): answer with
 * the usual error body instead of Node's bare status line, then drop the connection.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // Writing into a response already under way would corrupt it for the client.
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const refusal = parserRefusals[err.code ?? ''] ?? {
    status: 400,
    code: 'bad_request',
    message: 'the request is not valid HTTP',
  };
  const requestId = randomUUID();
  const body = JSON.stringify({
    error: { code: refusal.code, message: refusal.message, details: null, requestId },
  });
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
    () => socket.destroy(),
  );
}

export interface ServeOptions {
  port: number;
  host: string;
  logger: Logger;
  shutdownTimeoutMs: number;
  /** Connections still open this long into shutdown are cut (for answers meant to hang). */
  cutOffAfterMs?: number;
}

/**
 * Serves `app` until SIGTERM or SIGINT, then stops accepting, finishes the requests in
 * flight and runs `closeClients`. Logs "listening" only once the signal is handled, so a
 * supervisor that takes that line as ready can stop the process at once.
 */
export async function serve(
  app: Express,
  options: ServeOptions,
  closeClients: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const { logger, cutOffAfterMs } = options;
  const http = await listen(app, options.port, options.host);
  onShutdown(logger, options.shutdownTimeoutMs, async () => {
    const cutOff =
      cutOffAfterMs === undefined
        ? undefined
        : setTimeout(() => http.server.closeAllConnections(), cutOffAfterMs).unref();
    try {
      await http.close();
    } finally {
      clearTimeout(cutOff);
    }
    await closeClients();
  });
  logger.info({ port: http.port }, 'listening');
}
