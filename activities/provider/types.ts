/** What the payment worker asks of a payment service provider (PSP). */
export interface PaymentProvider {
  charge(req: ChargeRequest): Promise<ChargeOutcome>;
  /** The charge made under `idempotencyKey`, if any: how an unknown outcome is settled. */
  findCharge(idempotencyKey: string): Promise<ProviderCharge | undefined>;
  /** Holds the amount on the card; nothing moves until it is captured. */
  authorize(req: ChargeRequest): Promise<MovementOutcome>;
  /** Takes up to the authorized amount, once; the rest of the hold is released. */
  capture(req: CaptureRequest): Promise<MovementOutcome>;
  /** Releases an authorization that was not captured. */
  voidAuthorization(req: VoidRequest): Promise<MovementOutcome>;
  /** Gives back part or all of a charge or a capture. */
  refund(req: RefundRequest): Promise<MovementOutcome>;
  /**
   * The movement of any kind made under `idempotencyKey`, if any. Throws as findCharge
   * does: ProviderProtocolError when the answer breaks the contract, else a transient Error.
   */
  findMovement(idempotencyKey: string): Promise<ProviderMovement | undefined>;
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

export type MovementKind = 'charge' | 'authorization' | 'capture' | 'void' | 'refund';

export interface ProviderMovement {
  id: string;
  kind: MovementKind;
  amountMinor: number;
  currency: string;
  idempotencyKey: string;
  /** The authorization a capture or void settles, or the charge or capture a refund returns. */
  parentId?: string;
}

/** What authorize, capture, void and refund answer. */
export type MovementOutcome =
  | { kind: 'done'; movement: ProviderMovement }
  /** Final: the provider refused (declined, wrong state, over the amount); `reason` is its stable code. */
  | { kind: 'refused'; reason: string }
  | { kind: 'unavailable'; message: string }
  | { kind: 'timeout'; message: string };

export interface CaptureRequest {
  authorizationId: string;
  amountMinor: number;
  idempotencyKey: string;
}

export interface VoidRequest {
  authorizationId: string;
  idempotencyKey: string;
}

export interface RefundRequest {
  /** A charge or a capture. */
  paymentId: string;
  amountMinor: number;
  idempotencyKey: string;
}

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
