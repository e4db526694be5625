import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { PaymentFailureDetails } from '../activities';
import {
  cancelSignal,
  chargeKeyFor,
  DECLINE_TYPES,
  PURCHASE_SCOPED_PATCH,
  retrySignal,
  searchAttributes,
  statusQuery,
} from './contract';
import type {
  DeclineType,
  OperatorAction,
  PurchaseInput,
  PurchaseResult,
  PurchaseStatus,
} from './contract';

type Activities = ReturnType<typeof activities.createPurchaseActivities>;
type PaymentActivities = ReturnType<typeof activities.createPaymentActivities>;

const purchases = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '10 seconds' },
});

const declineReasons: Record<DeclineType, string> = {
  CardDeclined: 'card_declined',
  InsufficientFunds: 'insufficient_funds',
  InvalidToken: 'invalid_token',
};

/**
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
  let cancelRequested = false;
  void CancellationScope.current().cancelRequested.catch(() => {
    cancelRequested = true;
  });
  return CancellationScope.nonCancellable(() =>
    runPurchase(input, chargeKey, () => cancelRequested, { workflowId, runId }),
  );
}

async function runPurchase(
  input: PurchaseInput,
  chargeKey: string,
  cancelRequested: () => boolean,
  { workflowId, runId }: { workflowId: string; runId: string },
): Promise<PurchaseResult> {
  const { purchaseId } = input;
  const payments = proxyActivities<PaymentActivities>({
    taskQueue: input.paymentsTaskQueue,
    startToCloseTimeout: input.retry.providerTimeoutMs + 5000,
    retry: { maximumAttempts: 3, initialInterval: '1 second' },
  });
  const charging = proxyActivities<PaymentActivities>({
    taskQueue: input.paymentsTaskQueue,
    startToCloseTimeout: input.retry.providerTimeoutMs + 5000,
    retry: {
      initialInterval: input.retry.initialIntervalMs,
      backoffCoefficient: input.retry.backoffCoefficient,
      maximumInterval: input.retry.maximumIntervalMs,
      maximumAttempts: input.retry.maximumAttempts,
      nonRetryableErrorTypes: [...DECLINE_TYPES],
    },
  });

  let status: PurchaseStatus = 'RECEIVED';
  let attempts = 0;
  let operatorAction: ({ kind: 'retry' | 'cancel' } & OperatorAction) | undefined;
  setHandler(statusQuery, () => status);
  setHandler(retrySignal, (args) => {
    if (status === 'FAILED') operatorAction = { kind: 'retry', ...args };
  });
  setHandler(cancelSignal, (args) => {
    if (status === 'FAILED') operatorAction = { kind: 'cancel', ...args };
  });

  const moveTo = async (
    to: PurchaseStatus,
    change: Omit<Parameters<Activities['recordStatus']>[0], 'purchaseId' | 'to'> = {},
  ): Promise<void> => {
    // Set first: an operator who sees FAILED in the database may signal at once, and
    // signals are handled before the activity's result in the same activation.
    status = to;
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
    return { status, reason: 'canceled_by_operator' } satisfies PurchaseResult;
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
    return { status, reason: 'duplicate_purchase' };
  }

  compensations.push(() => purchases.releaseStock(purchaseId));
  const reserved = await purchases.reserveStock({ purchaseId, items: input.items });
  if (!reserved) {
    compensations.length = 0;
    await moveTo('REJECTED', { reason: 'out_of_stock' });
    await publish('purchase.rejected', 1, { reason: 'out_of_stock' });
    return { status, reason: 'out_of_stock' };
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
    const chargeRequest = {
      amountMinor: input.amountMinor,
      currency: input.currency,
      token: input.token,
      idempotencyKey: chargeKey,
    };
    let failure: { type: string; message: string; details?: PaymentFailureDetails } | undefined;
    let chargeId: string | undefined;
    try {
      const charge = await charging.charge(chargeRequest);
      attempts += charge.attempt;
      chargeId = charge.chargeId;
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && isDecline(cause.type)) {
        attempts += 1;
        const reason = declineReasons[cause.type];
        await compensate();
        await moveTo('DECLINED', { reason, attempts, lastError: cause.message });
        await publish('payment.declined', round, { reason });
        return { status, reason };
      }
      if (!(err instanceof ActivityFailure)) throw err;
      const details =
        cause instanceof ApplicationFailure
          ? (cause.details?.[0] as PaymentFailureDetails | undefined)
          : undefined;
      attempts += details?.attempt ?? input.retry.maximumAttempts;
      failure = {
        type: cause instanceof ApplicationFailure ? (cause.type ?? 'Unknown') : 'ActivityTimeout',
        message: cause?.message ?? err.message,
        details,
      };
      // The outcome may be unknown (a timeout): ask the provider before giving up. If it
      // cannot answer either, the purchase parks as FAILED; a later retry reuses the key.
      chargeId = await payments.findCharge(chargeKey).then(
        (c) => c?.id,
        () => undefined,
      );
    }

    // Approved wins over a cancel that came while the charge was in flight: the money
    // moved, and only a refund can move it back (docs/purchases.md, runbook).
    if (chargeId) {
      await moveTo('APPROVED', { attempts, chargeId });
      await publish('payment.approved', round, { chargeId, amountMinor: input.amountMinor });
      return { status, chargeId };
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
      data: {
        request: {
          customerId: input.customerId,
          items: input.items,
          amountMinor: input.amountMinor,
          currency: input.currency,
          metadata: input.metadata ?? {},
        },
        attempts,
        lastFailure: { type: failure?.type, message: failure?.message },
        firstFailureAt: failure?.details?.firstFailureAt ?? now,
        lastFailureAt: failure?.details?.lastFailureAt ?? now,
      },
    });

    // Parked with the stock still held until an operator decides.
    await condition(() => operatorAction !== undefined || cancelRequested());
    const action = operatorAction;
    operatorAction = undefined;
    if (!action) return cancel(round, {}, true);
    if (action.kind === 'cancel') return cancel(round, action, false);
    retriedBy = action;
  }
}

function isDecline(type: string | undefined | null): type is DeclineType {
  return (DECLINE_TYPES as readonly string[]).includes(type ?? '');
}
