import {
  CancelledFailure,
  condition,
  patched,
  proxyActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import { chargeOnce, deadLetterData, ignoringCancellation, operatorControls } from './shared';
import { chargeKeyFor, PURCHASE_SCOPED_PATCH, searchAttributes } from './contract';
import type { OperatorAction, PurchaseInput, PurchaseResult, PurchaseStatus } from './contract';

type Activities = ReturnType<typeof activities.createPurchaseActivities>;

const purchases = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '10 seconds' },
});

/**
 * Shape 2, kept so that runs started before shape 3 (./purchase.ts) finish: new purchases
 * start as `purchase`. Do not change it; delete it once no open run has this type
 * (`temporal workflow count --query "WorkflowType='purchaseWorkflow' AND ExecutionStatus='Running'"`).
 *
 * One purchase, from RECEIVED to a final state. The workflow id and the provider's
 * idempotency key are both derived from the purchase id, so retries, replays, worker
 * crashes and operator retries never charge twice, and no other purchase shares the key.
 *
 * A cancellation request from Temporal (Web UI, `temporal workflow cancel`) is an
 * operator cancel: it never interrupts a step, least of all a charge in flight. It is
 * acted on before the charge starts, when a charge fails, or while the purchase is
 * parked FAILED, with the same compensation as `dlq cancel`.
 */
export async function purchaseWorkflow(input: PurchaseInput): Promise<PurchaseResult> {
  const { workflowId, runId } = workflowInfo();
  const { purchaseId } = input;
  // Runs started before this change keep the key they may already have charged under.
  const chargeKey = patched(PURCHASE_SCOPED_PATCH) ? chargeKeyFor(purchaseId) : workflowId;
  return ignoringCancellation((cancelRequested) =>
    runPurchase(input, chargeKey, cancelRequested, { workflowId, runId }),
  );
}

async function runPurchase(
  input: PurchaseInput,
  chargeKey: string,
  cancelRequested: () => boolean,
  { workflowId, runId }: { workflowId: string; runId: string },
): Promise<PurchaseResult> {
  const { purchaseId } = input;
  const state = operatorControls();
  let attempts = 0;

  const moveTo = async (
    to: PurchaseStatus,
    change: Omit<Parameters<Activities['recordStatus']>[0], 'purchaseId' | 'to'> = {},
  ): Promise<void> => {
    // Set first: an operator who sees FAILED in the database may signal at once, and
    // signals are handled before the activity's result in the same activation.
    state.status = to;
    upsertSearchAttributes([{ key: searchAttributes.status, value: to }]);
    await purchases.recordStatus({ purchaseId, to, ...change });
  };
  const publish = (type: string, attempt: number, data: Record<string, unknown> = {}) =>
    purchases.publishEvent({
      type,
      attempt,
      occurredAt: new Date().toISOString(),
      purchaseId,
      merchantId: input.merchantId,
      workflowId,
      runId,
      data,
    });

  // Compensations run in reverse order; each is registered before the step it undoes.
  const compensations: (() => Promise<void>)[] = [];
  const compensate = async (): Promise<void> => {
    for (const undo of compensations.reverse()) await undo();
    compensations.length = 0;
  };

  /** What `dlq cancel` does; from Temporal, the run then closes as canceled. */
  const cancel = async (round: number, action: OperatorAction, fromTemporal: boolean) => {
    await compensate();
    const operator =
      action.operator ??
      (fromTemporal ? await purchases.cancelRequester({ workflowId, runId }) : undefined);
    await moveTo('CANCELED', {
      reason: 'canceled_by_operator',
      note: action.reason ?? (fromTemporal ? 'canceled_from_temporal' : 'canceled_by_operator'),
      actor: operator,
      by: 'operator',
    });
    await publish('purchase.canceled', round, { reason: 'canceled_by_operator', operator });
    if (fromTemporal) throw new CancelledFailure('canceled_from_temporal');
    return { status: state.status, reason: 'canceled_by_operator' } satisfies PurchaseResult;
  };

  await purchases.persistPurchase(input);

  const original = await purchases.claimFingerprint({
    purchaseId,
    merchantId: input.merchantId,
    customerId: input.customerId,
    items: input.items,
    amountMinor: input.amountMinor,
    currency: input.currency,
    token: input.token,
    windowMs: input.dedupWindowMs,
  });
  if (original) {
    await moveTo('DUPLICATE', { reason: 'duplicate_purchase', duplicateOf: original });
    await publish('purchase.duplicate', 1, { duplicateOf: original });
    return { status: state.status, reason: 'duplicate_purchase' };
  }

  compensations.push(() => purchases.releaseStock(purchaseId));
  const reserved = await purchases.reserveStock({ purchaseId, items: input.items });
  if (!reserved) {
    compensations.length = 0;
    await moveTo('REJECTED', { reason: 'out_of_stock' });
    await publish('purchase.rejected', 1, { reason: 'out_of_stock' });
    return { status: state.status, reason: 'out_of_stock' };
  }
  if (cancelRequested()) return cancel(1, {}, true);

  await publish('purchase.requested', 1, {
    amountMinor: input.amountMinor,
    currency: input.currency,
    items: input.items,
  });

  let retriedBy: OperatorAction | undefined;
  for (let round = 1; ; round++) {
    await moveTo(
      'PROCESSING',
      retriedBy && {
        by: 'operator',
        actor: retriedBy.operator,
        note: retriedBy.reason ?? 'retried_by_operator',
      },
    );
    const outcome = await chargeOnce(input, chargeKey);
    attempts += outcome.attempts;
    if (outcome.kind === 'declined') {
      const { reason } = outcome;
      await compensate();
      await moveTo('DECLINED', { reason, attempts, lastError: outcome.message });
      await publish('payment.declined', round, { reason });
      return { status: state.status, reason };
    }
    const chargeId = outcome.kind === 'approved' ? outcome.chargeId : undefined;
    const failure = outcome.kind === 'failed' ? outcome : undefined;

    // Approved wins over a cancel that came while the charge was in flight: the money
    // moved, and only a refund can move it back (docs/purchases.md, runbook).
    if (chargeId) {
      await moveTo('APPROVED', { attempts, chargeId });
      await publish('payment.approved', round, { chargeId, amountMinor: input.amountMinor });
      return { status: state.status, chargeId };
    }
    if (cancelRequested()) {
      await moveTo('FAILED', { attempts, lastError: `${failure?.type}: ${failure?.message}` });
      return cancel(round, {}, true);
    }

    const now = new Date().toISOString();
    await moveTo('FAILED', { attempts, lastError: `${failure?.type}: ${failure?.message}` });
    await purchases.publishDeadLetter({
      type: 'payment.failed',
      attempt: round,
      occurredAt: now,
      purchaseId,
      merchantId: input.merchantId,
      workflowId,
      runId,
      data: deadLetterData(input, attempts, failure, now),
    });

    // Parked with the stock still held until an operator decides.
    await condition(() => state.operatorAction !== undefined || cancelRequested());
    const action = state.operatorAction;
    state.operatorAction = undefined;
    if (!action) return cancel(round, {}, true);
    if (action.kind === 'cancel') return cancel(round, action, false);
    retriedBy = action;
  }
}
