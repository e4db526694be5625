import { condition, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type { createRefundActivities } from '../activities/refunds';
import { eventsOf, failureData, LOCAL_STEPS, moveOnce } from './shared';
import { cancelSignal, refundKeyFor, retrySignal } from './contract';
import type { OperatorAction, RefundInput, RefundStatus } from './contract';

type RefundActivities = ReturnType<typeof createRefundActivities>;

const steps = proxyLocalActivities<RefundActivities>(LOCAL_STEPS);

/**
 * One refund, from PENDING to SUCCEEDED or FAILED. It is a workflow of its own rather than
 * a child of the purchase's: a refund may come days after the purchase's run closed, and
 * several may run at once, each with its own retries, dead letter and operator controls.
 *
 * The provider's key comes from the refund id, so every retry, crash and operator retry
 * of this refund asks for the same movement and money moves back at most once. When the
 * retries run out the refund is parked FAILED and dead-lettered, still holding its amount,
 * until an operator retries it (the `retry` signal) or cancels it (`cancel`).
 */
export async function refund(input: RefundInput): Promise<{ status: RefundStatus }> {
  const { refundId, purchaseId, merchantId } = input;
  let parked = false;
  let action: ({ kind: 'retry' | 'cancel' } & OperatorAction) | undefined;
  setHandler(retrySignal, (args) => {
    if (parked) action = { kind: 'retry', ...args };
  });
  setHandler(cancelSignal, (args) => {
    if (parked) action = { kind: 'cancel', ...args };
  });
  const event = eventsOf(purchaseId, merchantId, { refundId, amountMinor: input.amountMinor });

  for (let round = 1; ; round++) {
    const outcome = await moveOnce(input, 'refund', {
      paymentId: input.paymentId,
      amountMinor: input.amountMinor,
      idempotencyKey: refundKeyFor(purchaseId, refundId),
    });
    if (outcome.kind === 'done') {
      await steps.settleRefund({
        refundId,
        to: 'SUCCEEDED',
        attempts: outcome.attempts,
        providerRefundId: outcome.movementId,
        event: event('refund.succeeded', round, { providerRefundId: outcome.movementId }),
      });
      return { status: 'SUCCEEDED' };
    }
    if (outcome.kind === 'refused') {
      await steps.settleRefund({
        refundId,
        to: 'FAILED',
        attempts: outcome.attempts,
        failure: outcome.reason,
        event: event('refund.failed', round, { reason: outcome.reason }),
      });
      return { status: 'FAILED' };
    }
    const failure = `${outcome.type}: ${outcome.message}`;
    const dead = failureData(outcome.attempts, outcome, new Date().toISOString());
    await steps.settleRefund({
      refundId,
      to: 'FAILED',
      parked: true,
      attempts: outcome.attempts,
      failure,
      event: event('refund.failed', round, { reason: 'retries_exhausted', ...dead }),
    });
    parked = true;
    await condition(() => action !== undefined);
    const decided = action!;
    parked = false;
    action = undefined;
    if (decided.kind === 'cancel') {
      await steps.settleRefund({
        refundId,
        to: 'FAILED',
        attempts: outcome.attempts,
        failure: decided.reason ?? 'canceled_by_operator',
        event: event('refund.failed', round + 1, {
          reason: 'canceled_by_operator',
          operator: decided.operator,
        }),
      });
      return { status: 'FAILED' };
    }
    await steps.reopenRefund(refundId);
  }
}
