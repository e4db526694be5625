/** What the payment worker asks of a payment service provider (PSP). */
export interface PaymentProvider {
  charge(req: ChargeRequest): Promise<ChargeOutcome>;
  /** The charge made under `idempotencyKey`, if any: how an unknown outcome is settled. */
  findCharge(idempotencyKey: string): Promise<ProviderCharge | undefined>;
}

export interface ChargeRequest {
  amountMinor: number;
  currency: string;
  token: string;
  idempotencyKey: string;
}

export interface ProviderCharge {
  id: string;
  amountMinor: number;
  currency: string;
}

export type DeclineReason = 'insufficient_funds' | 'card_declined' | 'invalid_token';

export type ChargeOutcome =
  | { kind: 'approved'; charge: ProviderCharge }
  /** Final: retrying the same request cannot succeed. */
  | { kind: 'declined'; reason: DeclineReason }
  /** Retryable with the same key: the provider could not take the request (5xx, 429, network). */
  | { kind: 'unavailable'; message: string }
  /** Retryable, but the outcome is unknown: retry with the same key or look the charge up. */
  | { kind: 'timeout'; message: string };

export type ProviderProtocolErrorCode =
  'idempotency_key_reused' | 'request_rejected' | 'malformed_response';

/**
 * The request or the answer broke the contract with the provider: a bug to fix, not a
 * payment outcome, so retrying will not help. `code` is stable; match on it, not the class name.
 */
export class ProviderProtocolError extends Error {
  constructor(
    readonly code: ProviderProtocolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProviderProtocolError';
  }
}
