import { ApplicationFailure, Context } from '@temporalio/activity';
import { MOVEMENT_REFUSED } from '../workflows/contract';
import type { DeclineType } from '../workflows/contract';
import { ProviderProtocolError } from './provider/types';
import type {
  CaptureRequest,
  ChargeRequest,
  MovementOutcome,
  PaymentProvider,
  ProviderCharge,
  ProviderMovement,
  RefundRequest,
  VoidRequest,
} from './provider/types';

/** Carried from attempt to attempt in heartbeat details, and out in the final failure. */
export interface PaymentFailureDetails {
  attempt: number;
  firstFailureAt: string;
  lastFailureAt: string;
}

const declineTypes: Record<'insufficient_funds' | 'card_declined' | 'invalid_token', DeclineType> =
  {
    insufficient_funds: 'InsufficientFunds',
    card_declined: 'CardDeclined',
    invalid_token: 'InvalidToken',
  };

/** What authorize, capture, void and refund return; a refusal fails as MovementRefused. */
export interface MovementResult {
  movementId: string;
  amountMinor: number;
  attempt: number;
}

function protocolFailure(err: unknown): never {
  if (err instanceof ProviderProtocolError) {
    throw ApplicationFailure.create({
      type: 'ProviderProtocolError',
      message: `${err.code}: ${err.message}`,
      nonRetryable: true,
    });
  }
  throw err;
}

/**
 * A retryable failure carrying the attempt count and the first and last failure times from
 * attempt to attempt (in heartbeat details), for the dead letter once retries run out.
 */
function transientFailure(outcome: { kind: 'unavailable' | 'timeout'; message: string }) {
  const context = Context.current();
  const now = new Date().toISOString();
  const previous = context.info.heartbeatDetails as PaymentFailureDetails | undefined;
  const details: PaymentFailureDetails = {
    attempt: context.info.attempt,
    firstFailureAt: previous?.firstFailureAt ?? now,
    lastFailureAt: now,
  };
  context.heartbeat(details);
  return ApplicationFailure.create({
    type: outcome.kind === 'timeout' ? 'ProviderTimeout' : 'ProviderUnavailable',
    message: outcome.message,
    details: [details],
  });
}

async function moved(call: () => Promise<MovementOutcome>): Promise<MovementResult> {
  const outcome = await call().catch(protocolFailure);
  switch (outcome.kind) {
    case 'done':
      return {
        movementId: outcome.movement.id,
        amountMinor: outcome.movement.amountMinor,
        attempt: Context.current().info.attempt,
      };
    case 'refused':
      throw ApplicationFailure.create({
        type: MOVEMENT_REFUSED,
        message: `the provider refused: ${outcome.reason}`,
        details: [{ reason: outcome.reason }],
        nonRetryable: true,
      });
    case 'unavailable':
    case 'timeout':
      throw transientFailure(outcome);
  }
}

export function createPaymentActivities(deps: { provider: PaymentProvider }) {
  const { provider } = deps;
  return {
    /** Charges under the caller's idempotency key; declines are final, outages are retried. */
    async charge(request: ChargeRequest): Promise<{ chargeId: string; attempt: number }> {
      const { attempt } = Context.current().info;
      const outcome = await provider.charge(request).catch(protocolFailure);
      switch (outcome.kind) {
        case 'approved':
          return { chargeId: outcome.charge.id, attempt };
        case 'declined':
          throw ApplicationFailure.create({
            type: declineTypes[outcome.reason],
            message: `the provider declined the charge: ${outcome.reason}`,
            nonRetryable: true,
          });
        case 'unavailable':
        case 'timeout':
          throw transientFailure(outcome);
      }
    },

    /** Reconciliation: did a charge happen under this key after all? */
    async findCharge(idempotencyKey: string): Promise<ProviderCharge | undefined> {
      return provider.findCharge(idempotencyKey);
    },

    /** Holds the amount on the card (a manual-capture purchase). */
    authorize: (request: ChargeRequest) => moved(() => provider.authorize(request)),
    capture: (request: CaptureRequest) => moved(() => provider.capture(request)),
    voidAuthorization: (request: VoidRequest) => moved(() => provider.voidAuthorization(request)),
    refund: (request: RefundRequest) => moved(() => provider.refund(request)),

    /** Reconciliation of any movement: did the provider record one under this key? */
    async findMovement(idempotencyKey: string): Promise<ProviderMovement | undefined> {
      return provider.findMovement(idempotencyKey);
    },
  };
}
