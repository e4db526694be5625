import { ApplicationFailure, Context } from '@temporalio/activity';
import type { DeclineType } from '../workflows/contract';
import { ProviderProtocolError } from './provider/types';
import type { ChargeRequest, PaymentProvider, ProviderCharge } from './provider/types';

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

export function createPaymentActivities(deps: { provider: PaymentProvider }) {
  const { provider } = deps;
  return {
    /** Charges under the caller's idempotency key; declines are final, outages are retried. */
    async charge(request: ChargeRequest): Promise<{ chargeId: string; attempt: number }> {
      const context = Context.current();
      const { attempt } = context.info;
      const outcome = await provider.charge(request).catch((err: unknown) => {
        if (err instanceof ProviderProtocolError) {
          throw ApplicationFailure.create({
            type: 'ProviderProtocolError',
            message: `${err.code}: ${err.message}`,
            nonRetryable: true,
          });
        }
        throw err;
      });
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
        case 'timeout': {
          const now = new Date().toISOString();
          const previous = context.info.heartbeatDetails as PaymentFailureDetails | undefined;
          const details: PaymentFailureDetails = {
            attempt,
            firstFailureAt: previous?.firstFailureAt ?? now,
            lastFailureAt: now,
          };
          context.heartbeat(details);
          throw ApplicationFailure.create({
            type: outcome.kind === 'timeout' ? 'ProviderTimeout' : 'ProviderUnavailable',
            message: outcome.message,
            details: [details],
          });
        }
      }
    },

    /** Reconciliation: did a charge happen under this key after all? */
    async findCharge(idempotencyKey: string): Promise<ProviderCharge | undefined> {
      return provider.findCharge(idempotencyKey);
    },
  };
}
