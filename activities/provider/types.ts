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
