import { z } from 'zod';
import { ProviderProtocolError } from './types';
import type { ChargeOutcome, ChargeRequest, PaymentProvider, ProviderCharge } from './types';

const sandboxCharge = z.object({
  id: z.string().min(1),
  status: z.literal('succeeded'),
  amount: z.number().int().positive(),
  currency: z.string(),
  idempotencyKey: z.string(),
});
type SandboxCharge = z.infer<typeof sandboxCharge>;

const sandboxError = z.object({
  error: z.object({ code: z.string(), message: z.string().optional() }),
});

const sandboxChargeList = z.object({ data: z.array(sandboxCharge) });

/** Everything the sandbox can answer to a charge, including not answering. */
type SandboxStatus =
  | { status: 'succeeded'; charge: SandboxCharge }
  | { status: 'insufficient_funds' }
  | { status: 'card_declined' }
  | { status: 'invalid_token' }
  | { status: 'unavailable'; message: string }
  | { status: 'timed_out'; message: string }
  | { status: 'idempotency_key_reused' }
  | { status: 'rejected'; message: string }
  | { status: 'malformed'; message: string };

/** The provider-sandbox service over HTTP. */
export class SandboxProvider implements PaymentProvider {
  private readonly chargesUrl: URL;

  constructor(
    baseUrl: string,
    private readonly timeoutMs: number,
  ) {
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new Error(`timeoutMs must be a positive integer, got ${timeoutMs}`);
    }
    // Resolving against a trailing slash keeps any path prefix in baseUrl.
    this.chargesUrl = new URL('charges', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  }

  async charge(req: ChargeRequest): Promise<ChargeOutcome> {
    let answer: { httpStatus: number; body: unknown };
    try {
      const res = await fetch(this.chargesUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          amount: req.amountMinor,
          currency: req.currency,
          token: req.token,
          idempotencyKey: req.idempotencyKey,
        }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      answer = { httpStatus: res.status, body: await readJson(res) };
    } catch (err) {
      return toOutcome(classifyFailure(err, this.timeoutMs));
    }
    return toOutcome(classifyAnswer(answer.httpStatus, answer.body, req));
  }

  /**
   * Throws ProviderProtocolError when the answer breaks the contract; any other error
   * (network, timeout, 5xx) is transient and the lookup can be retried.
   */
  async findCharge(idempotencyKey: string): Promise<ProviderCharge | undefined> {
    const url = new URL(this.chargesUrl);
    url.searchParams.set('idempotencyKey', idempotencyKey);
    const res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    const body = await readJson(res);
    if (res.status !== 200) {
      const code = sandboxError.safeParse(body).data?.error.code ?? 'no error code';
      const message = `looking up a charge, the provider answered ${res.status} (${code})`;
      if (res.status === 429 || res.status >= 500) throw new Error(message);
      throw new ProviderProtocolError('request_rejected', message);
    }
    const parsed = sandboxChargeList.safeParse(body);
    if (!parsed.success) {
      throw new ProviderProtocolError('malformed_response', 'the charge list is malformed');
    }
    const [found, ...others] = parsed.data.data;
    if (!found) return undefined;
    if (others.length > 0 || found.idempotencyKey !== idempotencyKey) {
      throw new ProviderProtocolError(
        'malformed_response',
        'the charge list does not match the idempotency key',
      );
    }
    return { id: found.id, amountMinor: found.amount, currency: found.currency };
  }
}

/** The one place the sandbox's statuses become ours. */
function toOutcome(answer: SandboxStatus): ChargeOutcome {
  switch (answer.status) {
    case 'succeeded':
      return {
        kind: 'approved',
        charge: {
          id: answer.charge.id,
          amountMinor: answer.charge.amount,
          currency: answer.charge.currency,
        },
      };
    case 'insufficient_funds':
    case 'card_declined':
    case 'invalid_token':
      return { kind: 'declined', reason: answer.status };
    case 'unavailable':
      return { kind: 'unavailable', message: answer.message };
    case 'timed_out':
      return { kind: 'timeout', message: answer.message };
    case 'idempotency_key_reused':
      throw new ProviderProtocolError(
        'idempotency_key_reused',
        'the idempotency key was already used for a different charge',
      );
    case 'rejected':
      throw new ProviderProtocolError('request_rejected', answer.message);
    case 'malformed':
      throw new ProviderProtocolError('malformed_response', answer.message);
    default: {
      const unreachable: never = answer;
      throw new Error(`unhandled sandbox status ${JSON.stringify(unreachable)}`);
    }
  }
}

function classifyAnswer(httpStatus: number, body: unknown, req: ChargeRequest): SandboxStatus {
  if (httpStatus >= 200 && httpStatus < 300) {
    const parsed = sandboxCharge.safeParse(body);
    if (!parsed.success) {
      return { status: 'malformed', message: `the ${httpStatus} answer is not a charge` };
    }
    const charge = parsed.data;
    // A charge for another request would be booked against the wrong purchase.
    if (
      charge.idempotencyKey !== req.idempotencyKey ||
      charge.amount !== req.amountMinor ||
      charge.currency !== req.currency
    ) {
      return { status: 'malformed', message: 'the charge does not match the request' };
    }
    return { status: 'succeeded', charge };
  }
  const error = sandboxError.safeParse(body).data?.error;
  const described = `the provider answered ${httpStatus} (${error?.code ?? 'no error code'})`;
  if (httpStatus === 429 || httpStatus >= 500) return { status: 'unavailable', message: described };
  if (httpStatus === 402) {
    return {
      status: error?.code === 'insufficient_funds' ? 'insufficient_funds' : 'card_declined',
    };
  }
  if (httpStatus === 400 && error?.code === 'invalid_token') return { status: 'invalid_token' };
  if (httpStatus === 409 && error?.code === 'idempotency_key_reused') {
    return { status: 'idempotency_key_reused' };
  }
  const detail = error?.message ? `: ${error.message}` : '';
  return { status: 'rejected', message: `${described}${detail}` };
}

function classifyFailure(err: unknown, timeoutMs: number): SandboxStatus {
  // Duck-typed, not instanceof: fetch's errors may come from another realm (as under jest).
  const { name, message, cause } = fieldsOf(err);
  if (name === 'TimeoutError') {
    return { status: 'timed_out', message: `no answer within ${timeoutMs} ms` };
  }
  // fetch reports network failures as "fetch failed" with the socket error as the cause.
  const { code } = fieldsOf(cause);
  const reason =
    typeof code === 'string' ? code : typeof message === 'string' ? message : 'unknown';
  return { status: 'unavailable', message: `network error: ${reason}` };
}

function fieldsOf(value: unknown): {
  name?: unknown;
  message?: unknown;
  cause?: unknown;
  code?: unknown;
} {
  return typeof value === 'object' && value !== null ? value : {};
}

async function readJson(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // A proxy's HTML error page is not JSON; the HTTP status alone still classifies it.
    return undefined;
  }
}
