import { z } from 'zod';
import { ProviderProtocolError } from './types';
import type {
  CaptureRequest,
  ChargeOutcome,
  ChargeRequest,
  MovementKind,
  MovementOutcome,
  PaymentProvider,
  ProviderCharge,
  ProviderMovement,
  RefundRequest,
  VoidRequest,
} from './types';

const sandboxCharge = z.object({
  id: z.string().min(1),
  status: z.literal('succeeded'),
  amount: z.number().int().positive(),
  currency: z.string(),
  idempotencyKey: z.string(),
});

const sandboxMovement = z.object({
  id: z.string().min(1),
  kind: z.enum(['charge', 'authorization', 'capture', 'void', 'refund']),
  status: z.literal('succeeded'),
  amount: z.number().int().positive(),
  currency: z.string(),
  idempotencyKey: z.string(),
  parentId: z.string().min(1).optional(),
});
type SandboxMovement = z.infer<typeof sandboxMovement>;

const sandboxError = z.object({
  error: z.object({ code: z.string(), message: z.string().optional() }),
});

/** No answer in time, or no answer to act on (network, 429, 5xx): one outcome for every operation. */
type Outage = { kind: 'unavailable'; message: string } | { kind: 'timeout'; message: string };

/** What the sandbox answered a POST, as far as charges and movements read it alike. */
type SandboxAnswer =
  | Outage
  | { kind: 'succeeded'; httpStatus: number; body: unknown }
  /** A 4xx other than 429 and key reuse: a refusal or a bad request, as the operation reads it. */
  | { kind: 'failed'; httpStatus: number; code: string | undefined; message: string };

/** What a movement answered to a request must hold, or it belongs to another request. */
interface ExpectedMovement {
  kind: MovementKind;
  idempotencyKey: string;
  amountMinor?: number;
  currency?: string;
  parentId?: string;
}

/** Statuses whose coded answers are a final refusal of a movement rather than a bad request. */
const REFUSAL_STATUSES = new Set([402, 404, 409, 422]);

/** The provider-sandbox service over HTTP. */
export class SandboxProvider implements PaymentProvider {
  private readonly baseUrl: URL;

  constructor(
    baseUrl: string,
    private readonly timeoutMs: number,
  ) {
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new Error(`timeoutMs must be a positive integer, got ${timeoutMs}`);
    }
    // Resolving against a trailing slash keeps any path prefix in baseUrl.
    this.baseUrl = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  }

  async charge(req: ChargeRequest): Promise<ChargeOutcome> {
    return toChargeOutcome(await this.post('charges', paymentBody(req)), req);
  }

  async authorize(req: ChargeRequest): Promise<MovementOutcome> {
    const answer = await this.post('authorizations', paymentBody(req));
    const { amountMinor, currency, idempotencyKey } = req;
    return toMovementOutcome(answer, {
      kind: 'authorization',
      idempotencyKey,
      amountMinor,
      currency,
    });
  }

  async capture(req: CaptureRequest): Promise<MovementOutcome> {
    const { authorizationId, amountMinor, idempotencyKey } = req;
    const answer = await this.post('captures', {
      authorizationId,
      amount: amountMinor,
      idempotencyKey,
    });
    return toMovementOutcome(answer, {
      kind: 'capture',
      idempotencyKey,
      amountMinor,
      parentId: authorizationId,
    });
  }

  async voidAuthorization(req: VoidRequest): Promise<MovementOutcome> {
    const { authorizationId, idempotencyKey } = req;
    const answer = await this.post('voids', { authorizationId, idempotencyKey });
    return toMovementOutcome(answer, { kind: 'void', idempotencyKey, parentId: authorizationId });
  }

  async refund(req: RefundRequest): Promise<MovementOutcome> {
    const { paymentId, amountMinor, idempotencyKey } = req;
    const answer = await this.post('refunds', { paymentId, amount: amountMinor, idempotencyKey });
    return toMovementOutcome(answer, {
      kind: 'refund',
      idempotencyKey,
      amountMinor,
      parentId: paymentId,
    });
  }

  /**
   * Throws ProviderProtocolError when the answer breaks the contract; any other error
   * (network, timeout, 5xx) is transient and the lookup can be retried.
   */
  async findCharge(idempotencyKey: string): Promise<ProviderCharge | undefined> {
    const found = await this.lookup('charges', 'charge', sandboxCharge, idempotencyKey);
    return found && { id: found.id, amountMinor: found.amount, currency: found.currency };
  }

  /** Throws as findCharge does. */
  async findMovement(idempotencyKey: string): Promise<ProviderMovement | undefined> {
    const found = await this.lookup('movements', 'movement', sandboxMovement, idempotencyKey);
    return found && toProviderMovement(found);
  }

  /** Posts `body` as JSON; only key reuse throws, every other answer is classified. */
  private async post(path: string, body: Record<string, unknown>): Promise<SandboxAnswer> {
    let answer: { httpStatus: number; body: unknown };
    try {
      const res = await fetch(new URL(path, this.baseUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      answer = { httpStatus: res.status, body: await readJson(res) };
    } catch (err) {
      return classifyFailure(err, this.timeoutMs);
    }
    return classifyAnswer(answer.httpStatus, answer.body);
  }

  /** The one item a list filtered by `idempotencyKey` holds, if any. */
  private async lookup<T extends { idempotencyKey: string }>(
    path: string,
    what: string,
    item: z.ZodType<T>,
    idempotencyKey: string,
  ): Promise<T | undefined> {
    const url = new URL(path, this.baseUrl);
    url.searchParams.set('idempotencyKey', idempotencyKey);
    const res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    const body = await readJson(res);
    if (res.status !== 200) {
      const code = sandboxError.safeParse(body).data?.error.code ?? 'no error code';
      const message = `looking up a ${what}, the provider answered ${res.status} (${code})`;
      if (res.status === 429 || res.status >= 500) throw new Error(message);
      throw new ProviderProtocolError('request_rejected', message);
    }
    const parsed = z.object({ data: z.array(item) }).safeParse(body);
    if (!parsed.success) {
      throw new ProviderProtocolError('malformed_response', `the ${what} list is malformed`);
    }
    const [found, ...others] = parsed.data.data;
    if (!found) return undefined;
    if (others.length > 0 || found.idempotencyKey !== idempotencyKey) {
      throw new ProviderProtocolError(
        'malformed_response',
        `the ${what} list does not match the idempotency key`,
      );
    }
    return found;
  }
}

/** A charge and an authorization ask the same: one moves the money, the other holds it. */
function paymentBody(req: ChargeRequest): Record<string, unknown> {
  return {
    amount: req.amountMinor,
    currency: req.currency,
    token: req.token,
    idempotencyKey: req.idempotencyKey,
  };
}

/** The one place the sandbox's answers to a charge become ours. */
function toChargeOutcome(answer: SandboxAnswer, req: ChargeRequest): ChargeOutcome {
  switch (answer.kind) {
    case 'succeeded': {
      const parsed = sandboxCharge.safeParse(answer.body);
      if (!parsed.success) {
        throw new ProviderProtocolError(
          'malformed_response',
          `the ${answer.httpStatus} answer is not a charge`,
        );
      }
      const charge = parsed.data;
      // A charge for another request would be booked against the wrong purchase.
      if (
        charge.idempotencyKey !== req.idempotencyKey ||
        charge.amount !== req.amountMinor ||
        charge.currency !== req.currency
      ) {
        throw new ProviderProtocolError(
          'malformed_response',
          'the charge does not match the request',
        );
      }
      return {
        kind: 'approved',
        charge: { id: charge.id, amountMinor: charge.amount, currency: charge.currency },
      };
    }
    case 'failed':
      if (answer.httpStatus === 402) {
        const reason = answer.code === 'insufficient_funds' ? answer.code : 'card_declined';
        return { kind: 'declined', reason };
      }
      if (answer.httpStatus === 400 && answer.code === 'invalid_token') {
        return { kind: 'declined', reason: 'invalid_token' };
      }
      throw new ProviderProtocolError('request_rejected', answer.message);
    case 'unavailable':
    case 'timeout':
      return answer;
    default: {
      const unreachable: never = answer;
      throw new Error(`unhandled sandbox answer ${JSON.stringify(unreachable)}`);
    }
  }
}

/** The one place the sandbox's answers to an authorization, capture, void or refund become ours. */
function toMovementOutcome(answer: SandboxAnswer, expected: ExpectedMovement): MovementOutcome {
  switch (answer.kind) {
    case 'succeeded': {
      const parsed = sandboxMovement.safeParse(answer.body);
      if (!parsed.success) {
        throw new ProviderProtocolError(
          'malformed_response',
          `the ${answer.httpStatus} answer is not a movement`,
        );
      }
      // A movement for another request would be booked against the wrong purchase.
      if (!matches(parsed.data, expected)) {
        throw new ProviderProtocolError(
          'malformed_response',
          `the ${parsed.data.kind} does not match the ${expected.kind} asked for`,
        );
      }
      return { kind: 'done', movement: toProviderMovement(parsed.data) };
    }
    case 'failed': {
      const { httpStatus, code } = answer;
      // The sandbox's own `not_found` means no such route: a wrong URL, not a refusal.
      const refused =
        code !== undefined &&
        ((REFUSAL_STATUSES.has(httpStatus) && code !== 'not_found') ||
          (httpStatus === 400 && code === 'invalid_token'));
      if (refused) return { kind: 'refused', reason: code };
      throw new ProviderProtocolError('request_rejected', answer.message);
    }
    case 'unavailable':
    case 'timeout':
      return answer;
    default: {
      const unreachable: never = answer;
      throw new Error(`unhandled sandbox answer ${JSON.stringify(unreachable)}`);
    }
  }
}

function matches(movement: SandboxMovement, expected: ExpectedMovement): boolean {
  const { amountMinor, currency, parentId } = expected;
  return (
    movement.kind === expected.kind &&
    movement.idempotencyKey === expected.idempotencyKey &&
    (amountMinor === undefined || movement.amount === amountMinor) &&
    (currency === undefined || movement.currency === currency) &&
    (parentId === undefined || movement.parentId === parentId)
  );
}

function toProviderMovement(movement: SandboxMovement): ProviderMovement {
  const { id, kind, amount, currency, idempotencyKey, parentId } = movement;
  return {
    id,
    kind,
    amountMinor: amount,
    currency,
    idempotencyKey,
    ...(parentId === undefined ? {} : { parentId }),
  };
}

function classifyAnswer(httpStatus: number, body: unknown): SandboxAnswer {
  if (httpStatus >= 200 && httpStatus < 300) return { kind: 'succeeded', httpStatus, body };
  const error = sandboxError.safeParse(body).data?.error;
  const described = `the provider answered ${httpStatus} (${error?.code ?? 'no error code'})`;
  if (httpStatus === 429 || httpStatus >= 500) return { kind: 'unavailable', message: described };
  if (httpStatus === 409 && error?.code === 'idempotency_key_reused') {
    throw new ProviderProtocolError(
      'idempotency_key_reused',
      'the idempotency key was already used for a different request',
    );
  }
  const detail = error?.message ? `: ${error.message}` : '';
  return { kind: 'failed', httpStatus, code: error?.code, message: `${described}${detail}` };
}

function classifyFailure(err: unknown, timeoutMs: number): Outage {
  // Duck-typed, not instanceof: fetch's errors may come from another realm (as under jest).
  const { name, message, cause } = fieldsOf(err);
  if (name === 'TimeoutError') {
    return { kind: 'timeout', message: `no answer within ${timeoutMs} ms` };
  }
  // fetch reports network failures as "fetch failed" with the socket error as the cause.
  const { code } = fieldsOf(cause);
  const reason =
    typeof code === 'string' ? code : typeof message === 'string' ? message : 'unknown';
  return { kind: 'unavailable', message: `network error: ${reason}` };
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
