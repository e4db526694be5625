import { ValueError } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import { Router } from 'express';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { requireRole } from '../common/auth';
import { EncryptionCodec, fromJsonPayload, toJsonPayload } from '../common/codec';
import type { Config } from '../common/config';
import type { PrismaClient } from '../common/db';
import { badRequest } from '../common/errors';

/*
 * Temporal's codec-server protocol, so the Web UI and `temporal workflow show
 * --codec-endpoint` can show decrypted payloads: POST <endpoint>/decode and /encode take
 * and answer `{ payloads: [{ metadata: { key: base64 }, data: base64 }] }`. Decrypted
 * payloads hold card tokens, so only an admin key may ask.
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
  router.use(codecCors(deps.config.CODEC_CORS_ORIGINS));
  // Uncached: a revoked admin key stops decoding at once.
  router.use(requireRole(deps.prisma, 'admin', 0));
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
