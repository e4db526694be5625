import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { PaymentFailureDetails } from '../activities';
import {
  cancelSignal,
  DECLINE_TYPES,
  retrySignal,
  searchAttributes,
  statusQuery,
} from './contract';
import type { DeclineType, PurchaseInput, PurchaseResult, PurchaseStatus } from './contract';

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
 * One purchase, from RECEIVED to a final state. The workflow id is derived from
 * (merchant, Idempotency-Key), and the provider's idempotency key is that id, so
 * retries, replays and worker crashes never charge twice.
 */
export async function purchaseWorkflow(input: PurchaseInput): Promise<PurchaseResult> {
  const { workflowId, runId } = workflowInfo();
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
  let operatorAction: 'retry' | 'cancel' | undefined;
  let cancelReason: string | undefined;
  setHandler(statusQuery, () => status);
  setHandler(retrySignal, () => {
    if (status === 'FAILED') operatorAction = 'retry';
  });
  setHandler(cancelSignal, (args) => {
    if (status === 'FAILED') {
      operatorAction = 'cancel';
      cancelReason = args?.reason;
    }
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

  await publish('purchase.requested', 1, {
    amountMinor: input.amountMinor,
    currency: input.currency,
    items: input.items,
  });

  for (let round = 1; ; round++) {
    await moveTo('PROCESSING');
    const chargeRequest = {
      amountMinor: input.amountMinor,
      currency: input.currency,
      token: input.token,
      idempotencyKey: workflowId,
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
      chargeId = await payments.findCharge(workflowId).then(
        (c) => c?.id,
        () => undefined,
      );
    }

    if (chargeId) {
      await moveTo('APPROVED', { attempts, chargeId });
      await publish('payment.approved', round, { chargeId, amountMinor: input.amountMinor });
      return { status, chargeId };
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
    await condition(() => operatorAction !== undefined);
    const action = operatorAction;
    operatorAction = undefined;
    if (action === 'cancel') {
      await compensate();
      await moveTo('CANCELED', { reason: cancelReason ?? 'canceled_by_operator' });
      await publish('purchase.canceled', round, { reason: cancelReason ?? 'canceled_by_operator' });
      return { status, reason: 'canceled_by_operator' };
    }
  }
}

function isDecline(type: string | undefined | null): type is DeclineType {
  return (DECLINE_TYPES as readonly string[]).includes(type ?? '');
}
