import { createHash, randomBytes } from 'node:crypto';

export type MovementKind = 'charge' | 'authorization' | 'capture' | 'void' | 'refund';

/** One thing the sandbox did with money: what /movements and the follow-up routes answer. */
export interface Movement {
  id: string;
  kind: MovementKind;
  status: 'succeeded';
  amount: number;
  currency: string;
  idempotencyKey: string;
  parentId?: string;
  createdAt: string;
}

/** A charge as /charges has always answered it: a movement without kind or parent. */
export interface Charge {
  id: string;
  status: 'succeeded';
  amount: number;
  currency: string;
  idempotencyKey: string;
  createdAt: string;
}

/** What a charge or authorization key was first used for; without a kind it is a charge. */
export interface ChargeRequestShape {
  kind?: 'charge' | 'authorization';
  amount: number;
  currency: string;
  token: string;
}

/** An operation on money the sandbox already holds. */
export type FollowUpRequest =
  | { kind: 'capture'; authorizationId: string; amount: number }
  | { kind: 'void'; authorizationId: string }
  | { kind: 'refund'; paymentId: string; amount: number };

/** A different request under a key already used is a conflict. */
export type RequestShape = ChargeRequestShape | FollowUpRequest;

/** Why a follow-up cannot be made, as the stable code the sandbox answers. */
export type Refusal =
  | 'authorization_not_found'
  | 'authorization_voided'
  | 'authorization_already_captured'
  | 'amount_exceeds_authorized'
  | 'payment_not_found'
  | 'refund_exceeds_payment';

export type FollowUpCheck =
  | {
      kind: 'allowed';
      amount: number;
      currency: string;
      parentId: string;
      /** The charge or authorization the money was first asked for under. */
      originId: string;
    }
  | { kind: 'refused'; code: Refusal };

export type AttemptResult =
  | {
      kind: 'accepted';
      attempts: number;
      charge: Charge | undefined;
      movement: Movement | undefined;
    }
  | { kind: 'conflict' };

interface KeyEntry {
  fingerprint: string;
  attempts: number;
  movement: Movement | undefined;
  /** Set for a charge only: the shape /charges answers. */
  charge: Charge | undefined;
}

const ID_PREFIX: Record<MovementKind, string> = {
  charge: 'ch',
  authorization: 'auth',
  capture: 'cap',
  void: 'void',
  refund: 're',
};

/**
 * The sandbox's movements, by idempotency key and by id. Every method is synchronous,
 * so a check-and-insert can never interleave with another request's.
 */
export class Ledger {
  private readonly entries = new Map<string, KeyEntry>();
  private readonly charges: Charge[] = [];
  private readonly history: Movement[] = [];
  private readonly byId = new Map<string, Movement>();
  /** Per authorization id: its one capture, or its void. */
  private readonly captures = new Map<string, Movement>();
  private readonly voids = new Map<string, Movement>();
  /** Per charge or capture id: how much of it has been refunded. */
  private readonly refunded = new Map<string, number>();

  /** Counts one attempt under `key`; the key stays bound to the request it was first used with. */
  attempt(key: string, request: RequestShape): AttemptResult {
    const fingerprint = fingerprintOf(request);
    const entry = this.entries.get(key);
    if (!entry) {
      this.entries.set(key, { fingerprint, attempts: 1, movement: undefined, charge: undefined });
      return { kind: 'accepted', attempts: 1, charge: undefined, movement: undefined };
    }
    if (entry.fingerprint !== fingerprint) return { kind: 'conflict' };
    entry.attempts += 1;
    return {
      kind: 'accepted',
      attempts: entry.attempts,
      charge: entry.charge,
      movement: entry.movement,
    };
  }

  /** Records the charge for `key` once; later calls return the same charge. */
  record(key: string, amount: number, currency: string): Charge {
    const entry = this.entryOf(key);
    if (entry.charge) return entry.charge;
    const { id, status, idempotencyKey, createdAt } = this.store(entry, key, {
      kind: 'charge',
      amount,
      currency,
    });
    const charge: Charge = { id, status, amount, currency, idempotencyKey, createdAt };
    entry.charge = charge;
    this.charges.push(charge);
    return charge;
  }

  /** Records the authorization for `key` once: the amount is held, nothing moves. */
  recordAuthorization(key: string, amount: number, currency: string): Movement {
    const entry = this.entryOf(key);
    return entry.movement ?? this.store(entry, key, { kind: 'authorization', amount, currency });
  }

  /** Whether `request` can be made against the ledger as it stands now. */
  check(request: FollowUpRequest): FollowUpCheck {
    if (request.kind === 'refund') {
      const payment = this.byId.get(request.paymentId);
      if (payment?.kind !== 'charge' && payment?.kind !== 'capture') {
        return { kind: 'refused', code: 'payment_not_found' };
      }
      const refunded = this.refunded.get(payment.id) ?? 0;
      if (refunded + request.amount > payment.amount) {
        return { kind: 'refused', code: 'refund_exceeds_payment' };
      }
      return {
        kind: 'allowed',
        amount: request.amount,
        currency: payment.currency,
        parentId: payment.id,
        originId: payment.parentId ?? payment.id,
      };
    }
    const authorization = this.byId.get(request.authorizationId);
    if (authorization?.kind !== 'authorization') {
      return { kind: 'refused', code: 'authorization_not_found' };
    }
    const { id, currency } = authorization;
    if (request.kind === 'capture') {
      if (this.voids.has(id)) return { kind: 'refused', code: 'authorization_voided' };
      if (this.captures.has(id)) return { kind: 'refused', code: 'authorization_already_captured' };
      if (request.amount > authorization.amount) {
        return { kind: 'refused', code: 'amount_exceeds_authorized' };
      }
      return { kind: 'allowed', amount: request.amount, currency, parentId: id, originId: id };
    }
    if (this.captures.has(id)) return { kind: 'refused', code: 'authorization_already_captured' };
    if (this.voids.has(id)) return { kind: 'refused', code: 'authorization_voided' };
    return { kind: 'allowed', amount: authorization.amount, currency, parentId: id, originId: id };
  }

  /**
   * Records the follow-up for `key` once. Checks again, so no caller can over-capture or
   * over-refund by forgetting to; call `check` first to answer a refusal.
   */
  recordFollowUp(key: string, request: FollowUpRequest): Movement {
    const entry = this.entryOf(key);
    if (entry.movement) return entry.movement;
    const check = this.check(request);
    if (check.kind === 'refused') {
      throw new Error(`Ledger.recordFollowUp called for a refused ${request.kind}: ${check.code}`);
    }
    const { amount, currency, parentId } = check;
    const movement = this.store(entry, key, { kind: request.kind, amount, currency, parentId });
    if (request.kind === 'capture') this.captures.set(parentId, movement);
    if (request.kind === 'void') this.voids.set(parentId, movement);
    if (request.kind === 'refund') {
      this.refunded.set(parentId, (this.refunded.get(parentId) ?? 0) + amount);
    }
    return movement;
  }

  find(key: string): Charge | undefined {
    return this.entries.get(key)?.charge;
  }

  findMovement(key: string): Movement | undefined {
    return this.entries.get(key)?.movement;
  }

  /** Every charge, oldest first. */
  list(): readonly Charge[] {
    return this.charges;
  }

  /** Every movement, charges included, oldest first. */
  movements(): readonly Movement[] {
    return this.history;
  }

  private entryOf(key: string): KeyEntry {
    const entry = this.entries.get(key);
    if (!entry) throw new Error('Ledger: a record was called before Ledger.attempt for this key');
    return entry;
  }

  private store(
    entry: KeyEntry,
    key: string,
    draft: Pick<Movement, 'kind' | 'amount' | 'currency' | 'parentId'>,
  ): Movement {
    const movement: Movement = {
      id: `${ID_PREFIX[draft.kind]}_${randomBytes(12).toString('hex')}`,
      kind: draft.kind,
      status: 'succeeded',
      amount: draft.amount,
      currency: draft.currency,
      idempotencyKey: key,
      ...(draft.parentId === undefined ? {} : { parentId: draft.parentId }),
      createdAt: new Date().toISOString(),
    };
    entry.movement = movement;
    this.history.push(movement);
    this.byId.set(movement.id, movement);
    return movement;
  }
}

// Only a digest of a token is kept, so the ledger never holds one. JSON keeps the parts
// apart, so no two requests share a fingerprint whatever their ids hold.
function fingerprintOf(request: RequestShape): string {
  if ('token' in request) {
    const tokenDigest = createHash('sha256').update(request.token).digest('hex');
    return JSON.stringify([
      request.kind ?? 'charge',
      request.amount,
      request.currency,
      tokenDigest,
    ]);
  }
  if (request.kind === 'void') return JSON.stringify([request.kind, request.authorizationId]);
  const target = request.kind === 'capture' ? request.authorizationId : request.paymentId;
  return JSON.stringify([request.kind, target, request.amount]);
}
