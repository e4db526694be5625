import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { guardedLookup, refusedLiteral, WebhookUrlError } from './url-policy';
import type { UrlPolicy } from './url-policy';

/** How much of an answer's body the delivery log keeps. */
export const RESPONSE_BODY_BYTES = 1024;

export interface PostResult {
  /** Set when an answer's status line arrived. */
  statusCode?: number;
  /** The first RESPONSE_BODY_BYTES of the answer, decoded as UTF-8. */
  body?: string;
  /** Why no answer came: a timeout, a refused connection, a refused address. */
  error?: string;
  /** True when the URL's address is not allowed: retrying will not help. */
  refused?: boolean;
  latencyMs: number;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * POSTs `body` to `url`, never throwing: the answer, or the reason there was none. The
 * status line must come within `timeoutMs`, and the call ends there at the latest, with
 * what of the body's first KiB has come; a receiver that hangs is cut off. Redirects are
 * not followed (they count as a failure), and each call uses a connection of its own.
 */
export function postWebhook(
  url: URL,
  body: string,
  headers: Record<string, string>,
  options: { timeoutMs: number; policy: UrlPolicy },
): Promise<PostResult> {
  const started = Date.now();
  const latency = () => Date.now() - started;
  const literal = refusedLiteral(url, options.policy);
  if (literal) return Promise.resolve({ error: literal.message, refused: true, latencyMs: 0 });

  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: Omit<PostResult, 'latencyMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ...result, latencyMs: latency() });
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'POST',
      agent: false,
      lookup: guardedLookup(options.policy),
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
    });
    // Once the status line is in, it is the answer, even if the body never ends.
    let answered: Pick<PostResult, 'statusCode' | 'body'> | undefined;
    const timer = setTimeout(
      () => finish(answered ?? { error: `no answer within ${options.timeoutMs} ms` }),
      options.timeoutMs,
    );
    req.on('error', (err: Error) => {
      if (err instanceof WebhookUrlError) finish({ error: err.message, refused: true });
      else finish({ error: describe(err) });
    });
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const head = () => ({
        statusCode: res.statusCode,
        body: decoder.decode(Buffer.concat(chunks).subarray(0, RESPONSE_BODY_BYTES)),
      });
      const done = () => finish(head());
      answered = head();
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        answered = head();
        if (size >= RESPONSE_BODY_BYTES) done();
      });
      res.on('end', done);
      // A body cut short after the status line still counts as the answer it was.
      res.on('error', done);
    });
    req.end(body);
  });
}

/** A connection error as the delivery log shows it: its code, or its message. */
function describe(err: NodeJS.ErrnoException): string {
  return (err.code ? `${err.code}: ${err.message}` : err.message).slice(0, 500);
}
