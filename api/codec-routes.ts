import { ValueError } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import { Router } from 'express';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { requireRole } from '../common/auth';
import { EncryptionCodec, fromJsonPayload, toJsonPayload } from '../common/codec';
import type { Config } from '../common/config';
import type { PrismaClient } from '../common/db';
import { AppError, badRequest } from '../common/errors';

/*
 * Temporal's codec-server protocol, so the Web UI and `temporal workflow show
 * --codec-endpoint` can show decrypted payloads: POST <endpoint>/decode and /encode take
 * and answer `{ payloads: [{ metadata: { key: base64 }, data: base64 }] }`. Decrypted
 * payloads hold card tokens, so only an admin key may ask.
 *
 * The Web UI cannot send a Bearer key: it sends only Content-Type and X-Namespace, plus the
 * browser's cookies and cached HTTP credentials when "Include cross-origin credentials" is
 * on. So the admin key is also taken as the password of HTTP Basic credentials, which an
 * operator gives the browser once at GET /codec/login (docs/purchases.md).
 */

const base64 = z.base64();
const payloadsBody = z.object({
  payloads: z.array(
    z.object({
      metadata: z
        .record(z.string(), base64)
        .nullish()
        .transform((m) => m ?? {}),
      data: base64.nullish().transform((d) => d ?? ''),
    }),
  ),
});

/** What a browser on the Web UI sends: X-Namespace, and Authorization when it has a token. */
const ALLOWED_HEADERS = 'authorization, content-type, x-namespace';

/** CORS for the listed origins only, answering preflights before any key is asked for. */
function codecCors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    res.vary('Origin');
    const origin = req.header('origin');
    const known = origin !== undefined && allowed.has(origin);
    if (known) {
      res.set('Access-Control-Allow-Origin', origin);
      res.set('Access-Control-Allow-Credentials', 'true');
    }
    if (req.method !== 'OPTIONS') return next();
    if (known) {
      res.set('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.set('Access-Control-Allow-Headers', ALLOWED_HEADERS);
      res.set('Access-Control-Max-Age', '600');
    }
    res.status(204).end();
  };
}

const REALM = 'Basic realm="gateway codec", charset="UTF-8"';

/** `Basic base64(any user:admin key)` becomes `Bearer <admin key>`, for requireRole. */
const basicAsBearer: RequestHandler = (req, _res, next) => {
  const basic = /^Basic ([A-Za-z0-9+/]+=*)$/.exec(req.header('authorization') ?? '');
  if (basic?.[1]) {
    const credentials = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = credentials.indexOf(':');
    if (colon >= 0) req.headers.authorization = `Bearer ${credentials.slice(colon + 1)}`;
  }
  next();
};

/** The guard, but its 401 asks the browser for credentials, which it then caches. */
function challenging(guard: RequestHandler): RequestHandler {
  return (req, res, next) =>
    guard(req, res, (err?: unknown) => {
      if (err instanceof AppError && err.status === 401) {
        next(new AppError(401, err.code, err.message, undefined, { 'WWW-Authenticate': REALM }));
        return;
      }
      next(err);
    });
}

/** Runs the posted payloads through one direction of the codec. */
function codecHandler(transform: (payloads: Payload[]) => Promise<Payload[]>): RequestHandler {
  return async (req, res) => {
    const { payloads } = payloadsBody.parse(req.body);
    let done: Payload[];
    try {
      done = await transform(payloads.map(fromJsonPayload));
    } catch (err) {
      // A payload under a key this api does not hold, or altered since it was sealed.
      if (err instanceof ValueError) throw badRequest('undecodable_payload', err.message);
      throw err;
    }
    res.json({ payloads: done.map(toJsonPayload) });
  };
}

export interface CodecRouteDeps {
  prisma: PrismaClient;
  config: Config;
}

export function codecRoutes(deps: CodecRouteDeps): Router {
  const router = Router();
  const codec = new EncryptionCodec(deps.config);
  // Uncached: a revoked admin key stops decoding at once.
  const admin = requireRole(deps.prisma, 'admin', 0);
  router.use(codecCors(deps.config.CODEC_CORS_ORIGINS));
  router.use(basicAsBearer);
  // Only here does a 401 challenge: from the UI's fetches a browser would not prompt anyway.
  router.get('/login', challenging(admin), (_req, res) => {
    res.json({ signedIn: true, message: 'this browser is signed in for the codec' });
  });
  router.use(admin);
  router.post(
    '/decode',
    codecHandler((p) => codec.decode(p)),
  );
  router.post(
    '/encode',
    codecHandler((p) => codec.encode(p)),
  );
  return router;
}
