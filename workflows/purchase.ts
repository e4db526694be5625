import {
  CancelledFailure,
  condition,
  proxyLocalActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { EventInput } from '../activities/events';
import type { Settlement } from '../activities/purchases';
import { chargeOnce, deadLetterData, ignoringCancellation, operatorControls } from './shared';
import { chargeKeyFor, searchAttributes } from './contract';
import type { OperatorAction, PurchaseInput, PurchaseResult, PurchaseStatus } from './contract';

type Activities = ReturnType<typeof activities.createPurchaseActivities>;

/*
 * The database and Kafka steps are local activities: they run in this worker, beside the
 * workflow, and cost no task-queue round trip and two history events instead of six.
 * Each does one transaction and then publishes, and a repeat of either is harmless
 * (activities/purchases.ts), so they retry without limit: a database or Kafka outage
 * holds the purchase where it is and it goes on when the engine is back.
 * - 10 s start-to-close: a step takes milliseconds; a hung Kafka send is cut short and
 *   retried rather than holding the worker's slot.
 * - Backoff from 200 ms, doubling, to 30 s. Waits up to 5 s are slept in the worker; a
 *   longer one becomes a durable timer (localRetryThreshold), so an outage of minutes
 *   neither keeps the workflow task open nor is lost with a worker.
 */
const steps = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  localRetryThreshold: '5 seconds',
  retry: {
    initialInterval: '200 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
  },
});

/**
 * One purchase, from RECEIVED to a final state, in three steps: admission (the duplicate
 * check, the stock reservation and PROCESSING, as one local activity), the charge (a
 * regular activity on the payments queue, with its durable retries), and settlement (the
 * final status, its compensation and its event, as one local activity).
 *
 * The workflow id and the provider's idempotency key both come from the purchase id, so
 * retries, replays, crashes and operator retries never charge twice, and no other
 * purchase shares the key. A cancellation request from Temporal (Web UI, `temporal
 * workflow cancel`) is an operator cancel that interrupts no step: it is acted on before
 * admission, when the charge fails, or while the purchase is parked FAILED.
 */
export async function purchase(input: PurchaseInput): Promise<PurchaseResult> {
  const { workflowId, runId } = workflowInfo();
  const { purchaseId, merchantId } = input;
  const chargeKey = chargeKeyFor(purchaseId);
  return ignoringCancellation(async (cancelRequested) => {
    const state = operatorControls();
    let attempts = 0;

    // Set before the step: an operator who sees FAILED may signal at once, and a signal
    // is handled before the step's result in the same activation.
    const enter = (to: PurchaseStatus): void => {
      state.status = to;
      upsertSearchAttributes([{ key: searchAttributes.status, value: to }]);
    };
    const event = (type: string, round: number, data: Record<string, unknown>): EventInput => ({
      type,
      attempt: round,
      occurredAt: new Date().toISOString(),
      purchaseId,
      merchantId,
      workflowId,
      runId,
      data,
    });
    const settle = async (settlement: Settlement): Promise<void> => {
      enter(settlement.change.to);
      await steps.settle(settlement);
    };

    /** What `dlq cancel` does; from Temporal, the run then closes as canceled. */
    const cancel = async (round: number, action: OperatorAction, fromTemporal: boolean) => {
      const operator =
        action.operator ??
        (fromTemporal ? await steps.cancelRequester({ workflowId, runId }) : undefined);
      const reason = 'canceled_by_operator';
      await settle({
        change: {
          purchaseId,
          to: 'CANCELED',
          by: 'operator',
          reason,
          note: action.reason ?? (fromTemporal ? 'canceled_from_temporal' : reason),
          actor: operator,
        },
        // Nothing is reserved before admission; releasing is a no-op then.
        release: true,
        event: event('purchase.canceled', round, { reason, operator }),
        topic: 'events',
      });
      if (fromTemporal) throw new CancelledFailure('canceled_from_temporal');
      return { status: state.status, reason } satisfies PurchaseResult;
    };

    if (cancelRequested()) return cancel(1, {}, true);
    const admission = await steps.admit(input, { workflowId, runId });
    if (admission.outcome === 'duplicate') {
      enter('DUPLICATE');
      return { status: state.status, reason: 'duplicate_purchase' };
    }
    if (admission.outcome === 'rejected') {
      enter('REJECTED');
      return { status: state.status, reason: admission.reason };
    }
    enter('PROCESSING');

    for (let round = 1; ; round++) {
      const outcome = await chargeOnce(input, chargeKey);
      attempts += outcome.attempts;
      if (outcome.kind === 'declined') {
        const { reason } = outcome;
        await settle({
          change: { purchaseId, to: 'DECLINED', reason, attempts, lastError: outcome.message },
          release: true,
          event: event('payment.declined', round, { reason }),
          topic: 'events',
        });
        return { status: state.status, reason };
      }
      // Approved wins over a cancel that came while the charge was in flight: the money
      // moved, and only a refund can move it back (docs/purchases.md, runbook).
      if (outcome.kind === 'approved') {
        const { chargeId } = outcome;
        await settle({
          change: { purchaseId, to: 'APPROVED', attempts, chargeId },
          event: event('payment.approved', round, { chargeId, amountMinor: input.amountMinor }),
          topic: 'events',
        });
        return { status: state.status, chargeId };
      }

      const failed = {
        purchaseId,
        to: 'FAILED',
        attempts,
        lastError: `${outcome.type}: ${outcome.message}`,
      } as const;
      if (cancelRequested()) {
        enter('FAILED');
        await steps.recordStatus(failed);
        return cancel(round, {}, true);
      }
      const now = new Date().toISOString();
      await settle({
        change: failed,
        event: event('payment.failed', round, deadLetterData(input, attempts, outcome, now)),
        topic: 'dead-letter',
      });

      // Parked with the stock still held until an operator decides.
      await condition(() => state.operatorAction !== undefined || cancelRequested());
      const action = state.operatorAction;
      state.operatorAction = undefined;
      if (!action) return cancel(round, {}, true);
      if (action.kind === 'cancel') return cancel(round, action, false);
      enter('PROCESSING');
      await steps.recordStatus({
        purchaseId,
        to: 'PROCESSING',
        by: 'operator',
        actor: action.operator,
        note: action.reason ?? 'retried_by_operator',
      });
    }
  });
}
