import { createHash, randomBytes } from 'node:crypto';

export interface Charge {
  id: string;
  status: 'succeeded';
  amount: number;
  currency: string;
  idempotencyKey: string;
  createdAt: string;
}

/** What a key was first used for; a different request under the same key is a conflict. */
export interface ChargeRequestShape {
  amount: number;
  currency: string;
  token: string;
}

export type AttemptResult =
  { kind: 'accepted'; attempts: number; charge: Charge | undefined } | { kind: 'conflict' };

interface KeyEntry {
  fingerprint: string;
  attempts: number;
  charge: Charge | undefined;
}

/**
 * The sandbox's charges, by idempotency key. Every method is synchronous, so a
 * check-and-insert can never interleave with another request's.
 */
export class Ledger {
  private readonly entries = new Map<string, KeyEntry>();
  private readonly charges: Charge[] = [];

  /** Counts one attempt under `key`; the key stays bound to the request it was first used with. */
  attempt(key: string, request: ChargeRequestShape): AttemptResult {
    const fingerprint = fingerprintOf(request);
    const entry = this.entries.get(key);
    if (!entry) {
      this.entries.set(key, { fingerprint, attempts: 1, charge: undefined });
      return { kind: 'accepted', attempts: 1, charge: undefined };
    }
    if (entry.fingerprint !== fingerprint) return { kind: 'conflict' };
    entry.attempts += 1;
    return { kind: 'accepted', attempts: entry.attempts, charge: entry.charge };
  }

  /** Records the charge for `key` once; later calls return the same charge. */
  record(key: string, amount: number, currency: string): Charge {
    const entry = this.entries.get(key);
    if (!entry) throw new Error('Ledger.record called before Ledger.attempt for this key');
    if (entry.charge) return entry.charge;
    const charge: Charge = {
      id: `ch_${randomBytes(12).toString('hex')}`,
      status: 'succeeded',
      amount,
      currency,
      idempotencyKey: key,
      createdAt: new Date().toISOString(),
    };
    entry.charge = charge;
    this.charges.push(charge);
    return charge;
  }

  find(key: string): Charge | undefined {
    return this.entries.get(key)?.charge;
  }

  /** Every charge, oldest first. */
  list(): readonly Charge[] {
    return this.charges;
  }
}

// Only a digest of the token is kept, so the ledger never holds one.
function fingerprintOf({ amount, currency, token }: ChargeRequestShape): string {
  const tokenDigest = createHash('sha256').update(token).digest('hex');
  return `${amount}|${currency}|${tokenDigest}`;
}
