import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import type { Deadline } from './support';

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  connections: number;
  /** Stop after this many responses... */
  amount?: number;
  /** ...or after this many seconds. */
  duration?: number;
  headers: Record<string, string>;
  /** A fixed body, or one built per request (unique keys need the latter). */
  body: string | ((i: number) => { headers: Record<string, string>; body: string });
}

export interface LoadRun {
  byStatus: Record<string, number>;
  /** Milliseconds per response, sub-millisecond resolution, every status. */
  latencies: number[];
  /** The same, 2xx responses only. */
  okLatencies: number[];
  /** Responses that carried `Idempotent-Replayed: true`. */
  replayed: number;
  errors: number;
  timeouts: number;
  /** First request sent to last response received. */
  seconds: number;
}

/**
 * One autocannon run through its programmatic API. Latencies are taken from each
 * 'response' event (hrtime-based floats) instead of autocannon's histogram, which keeps
 * whole milliseconds: too coarse for a 5 ms target.
 */
export function runLoad(options: LoadOptions, deadline: Deadline, phase: string): Promise<LoadRun> {
  deadline.check(phase);
  const latencies: number[] = [];
  const okLatencies: number[] = [];
  let replayed = 0;
  let lastResponse = 0;
  let built = 0;
  const { body } = options;
  const request: autocannon.Request =
    typeof body === 'string'
      ? { method: options.method ?? 'POST', ...(body && { body }) }
      : {
          method: options.method ?? 'POST',
          setupRequest: (req) => {
            const next = body(built++);
            return { ...req, headers: { ...req.headers, ...next.headers }, body: next.body };
          },
        };
  request.onResponse = (_status, _body, _context, headers) => {
    // autocannon keeps the header names as the server spelled them.
    const flag = Object.entries(headers).find(([k]) => k.toLowerCase() === 'idempotent-replayed');
    if (flag?.[1] === 'true') replayed++;
  };

  return new Promise<LoadRun>((resolve, reject) => {
    const t0 = performance.now();
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        ...(options.amount !== undefined && { amount: options.amount }),
        ...(options.duration !== undefined && { duration: options.duration }),
        headers: { 'content-type': 'application/json', ...options.headers },
        requests: [request],
        timeout: 30,
      },
      (err, result) => {
        deadline.signal.removeEventListener('abort', stop);
        if (err) return reject(err);
        if (deadline.signal.aborted) {
          return reject(deadline.error(phase));
        }
        const byStatus: Record<string, number> = {};
        for (const [code, { count }] of Object.entries(result.statusCodeStats)) {
          byStatus[code] = count;
        }
        resolve({
          byStatus,
          latencies,
          okLatencies,
          replayed,
          errors: result.errors,
          timeouts: result.timeouts,
          seconds: (lastResponse - t0) / 1000,
        });
      },
    );
    const stop = () => instance.stop();
    deadline.signal.addEventListener('abort', stop, { once: true });
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      latencies.push(ms);
      if (status >= 200 && status < 300) okLatencies.push(ms);
      lastResponse = performance.now();
    });
  });
}
