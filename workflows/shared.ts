/*
 * What every shape of the purchase workflow does alike: the charge, the dead letter, the
 * operator's controls and how a cancellation request is taken. Workflow code:
 * deterministic, no I/O.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { LocalActivityOptions } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { EventInput } from '../activities/events';
import type { MovementResult, PaymentFailureDetails } from '../activities';
import {
  cancelSignal,
  DECLINE_TYPES,
  MOVEMENT_REFUSED,
  retrySignal,
  statusQuery,
} from './contract';
import type { DeclineType, OperatorAction, PurchaseInput, PurchaseStatus } from './contract';

type PaymentActivities = ReturnType<typeof activities.createPaymentActivities>;

/*
 * The database and Kafka steps (of purchases and refunds) are local activities: they run
 * in this worker, beside the workflow, and cost no task-queue round trip and two history events instead of six.
 * Each does one transaction and then publishes, and a repeat of either is harmless
 * (activities/purchases.ts), so they retry without limit: a database or Kafka outage
 * holds the purchase where it is and it goes on when the engine is back.
 * - 10 s start-to-close: a step takes milliseconds; a hung Kafka send is cut short and
 *   retried rather than holding the worker's slot.
 * - Backoff from 200 ms, doubling, to 30 s. Waits up to 5 s are slept in the worker; a
 *   longer one becomes a durable timer (localRetryThreshold), so an outage of minutes
 *   neither keeps the workflow task open nor is lost with a worker.
 */
export const LOCAL_STEPS: LocalActivityOptions = {
  startToCloseTimeout: '10 seconds',
  localRetryThreshold: '5 seconds',
  retry: {
    initialInterval: '200 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
  },
};

const declineReasons: Record<DeclineType, string> = {
  CardDeclined: 'card_declined',
  InsufficientFunds: 'insufficient_funds',
  InvalidToken: 'invalid_token',
};

export type ChargeOutcome =
  | { kind: 'approved'; chargeId: string; attempts: number }
  | { kind: 'declined'; reason: string; message: string; attempts: number }
  | {
      kind: 'failed';
      attempts: number;
      type: string;
      message: string;
      details?: PaymentFailureDetails;
    };

/**
 * Charges under `idempotencyKey` on the payments queue, with the purchase's durable retry
 * policy. When the retries run out the outcome may be unknown (a timeout), so the provider
 * is asked whether a charge exists under the key before the purchase is called failed.
 */
export async function chargeOnce(
  input: PurchaseInput,
  idempotencyKey: string,
): Promise<ChargeOutcome> {
  const taskQueue = input.paymentsTaskQueue;
  const startToCloseTimeout = input.retry.providerTimeoutMs + 5000;
  const { findCharge } = proxyActivities<PaymentActivities>({
    taskQueue,
    startToCloseTimeout,
    retry: { maximumAttempts: 3, initialInterval: '1 second' },
  });
  const { charge } = proxyActivities<PaymentActivities>({
    taskQueue,
    startToCloseTimeout,
    retry: {
      initialInterval: input.retry.initialIntervalMs,
      backoffCoefficient: input.retry.backoffCoefficient,
      maximumInterval: input.retry.maximumIntervalMs,
      maximumAttempts: input.retry.maximumAttempts,
      nonRetryableErrorTypes: [...DECLINE_TYPES],
    },
  });
  try {
    const approved = await charge({
      amountMinor: input.amountMinor,
      currency: input.currency,
      token: input.token,
      idempotencyKey,
    });
    return { kind: 'approved', chargeId: approved.chargeId, attempts: approved.attempt };
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const cause = err.cause;
    if (cause instanceof ApplicationFailure && isDecline(cause.type)) {
      return {
        kind: 'declined',
        reason: declineReasons[cause.type],
        message: cause.message,
        attempts: 1,
      };
    }
    const failed = exhausted(err, input.retry.maximumAttempts);
    const found = await findCharge(idempotencyKey).then(
      (c) => c?.id,
      () => undefined,
    );
    if (found) return { kind: 'approved', chargeId: found, attempts: failed.attempts };
    return failed;
  }
}

/** A call whose retries ran out: how many attempts it made, and how the last one failed. */
function exhausted(
  err: ActivityFailure,
  maximumAttempts: number,
): Extract<ChargeOutcome, { kind: 'failed' }> {
  const cause = err.cause;
  const details =
    cause instanceof ApplicationFailure
      ? (cause.details?.[0] as PaymentFailureDetails | undefined)
      : undefined;
  return {
    kind: 'failed',
    attempts: details?.attempt ?? maximumAttempts,
    type: cause instanceof ApplicationFailure ? (cause.type ?? 'Unknown') : 'ActivityTimeout',
    message: cause?.message ?? err.message,
    details,
  };
}

export type MoveOutcome =
  | { kind: 'done'; movementId: string; amountMinor: number; attempts: number }
  /** Final: the provider refused; `reason` is its code. */
  | { kind: 'refused'; reason: string; attempts: number }
  | Extract<ChargeOutcome, { kind: 'failed' }>;

type Movement = 'authorize' | 'capture' | 'voidAuthorization' | 'refund';

/**
 * One authorize, capture, void or refund, as chargeOnce does a charge: on the payments
 * queue with the purchase's durable retries, and, once they run out with the outcome
 * unknown, a look-up of the movement under the same key before it is called failed.
 */
export async function moveOnce<M extends Movement>(
  settings: Pick<PurchaseInput, 'paymentsTaskQueue' | 'retry'>,
  movement: M,
  request: Parameters<PaymentActivities[M]>[0],
): Promise<MoveOutcome> {
  const { retry, paymentsTaskQueue: taskQueue } = settings;
  const startToCloseTimeout = retry.providerTimeoutMs + 5000;
  const { findMovement } = proxyActivities<PaymentActivities>({
    taskQueue,
    startToCloseTimeout,
    retry: { maximumAttempts: 3, initialInterval: '1 second' },
  });
  const moves = proxyActivities<PaymentActivities>({
    taskQueue,
    startToCloseTimeout,
    retry: {
      initialInterval: retry.initialIntervalMs,
      backoffCoefficient: retry.backoffCoefficient,
      maximumInterval: retry.maximumIntervalMs,
      maximumAttempts: retry.maximumAttempts,
      nonRetryableErrorTypes: [MOVEMENT_REFUSED],
    },
  });
  const call = moves[movement] as (r: typeof request) => Promise<MovementResult>;
  try {
    const done = await call(request);
    return {
      kind: 'done',
      movementId: done.movementId,
      amountMinor: done.amountMinor,
      attempts: done.attempt,
    };
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const cause = err.cause;
    if (cause instanceof ApplicationFailure && cause.type === MOVEMENT_REFUSED) {
      const details = cause.details?.[0] as { reason?: string } | undefined;
      return { kind: 'refused', reason: details?.reason ?? 'refused', attempts: 1 };
    }
    const failed = exhausted(err, retry.maximumAttempts);
    const found = await findMovement(request.idempotencyKey).then(
      (m) => m,
      () => undefined,
    );
    if (!found) return failed;
    return {
      kind: 'done',
      movementId: found.id,
      amountMinor: found.amountMinor,
      attempts: failed.attempts,
    };
  }
}

/** Builds this run's lifecycle events for a purchase; `extra` goes into every event's data. */
export function eventsOf(
  purchaseId: string,
  merchantId: string,
  extra: Record<string, unknown> = {},
) {
  const { workflowId, runId } = workflowInfo();
  return (type: string, round: number, data: Record<string, unknown>): EventInput => ({
    type,
    attempt: round,
    occurredAt: new Date().toISOString(),
    purchaseId,
    merchantId,
    workflowId,
    runId,
    data: { ...extra, ...data },
  });
}

/** What a payment.failed dead letter carries, for the operator who decides on it. */
export function deadLetterData(
  input: PurchaseInput,
  attempts: number,
  failure: Extract<ChargeOutcome, { kind: 'failed' }> | undefined,
  now: string,
): Record<string, unknown> {
  return {
    request: {
      customerId: input.customerId,
      items: input.items,
      amountMinor: input.amountMinor,
      currency: input.currency,
      metadata: input.metadata ?? {},
    },
    ...failureData(attempts, failure, now),
  };
}

/** How a payment call failed, for any dead letter. */
export function failureData(
  attempts: number,
  failure: Extract<ChargeOutcome, { kind: 'failed' }> | undefined,
  now: string,
): Record<string, unknown> {
  return {
    attempts,
    lastFailure: { type: failure?.type, message: failure?.message },
    firstFailureAt: failure?.details?.firstFailureAt ?? now,
    lastFailureAt: failure?.details?.lastFailureAt ?? now,
  };
}

function isDecline(type: string | undefined | null): type is DeclineType {
  return (DECLINE_TYPES as readonly string[]).includes(type ?? '');
}

/**
 * Runs `body` where a cancellation request from Temporal (Web UI, `temporal workflow
 * cancel`) interrupts nothing: `body` polls `cancelRequested` at the points where it can
 * act on one.
 */
export function ignoringCancellation<T>(body: (cancelRequested: () => boolean) => Promise<T>) {
  // True at once when the request came in the run's first activation, before the start.
  let requested = CancellationScope.current().consideredCancelled;
  void CancellationScope.current().cancelRequested.catch(() => {
    requested = true;
  });
  return CancellationScope.nonCancellable(() => body(() => requested));
}

/** The purchase's status as the workflow knows it, and the operator's pending decision. */
export interface PurchaseState {
  status: PurchaseStatus;
  /** Taken only while the purchase is parked FAILED; the workflow clears it once acted on. */
  operatorAction?: { kind: 'retry' | 'cancel' } & OperatorAction;
}

/** Answers the status query and takes the operator's retry and cancel signals. */
export function operatorControls(): PurchaseState {
  const state: PurchaseState = { status: 'RECEIVED' };
  setHandler(statusQuery, () => state.status);
  setHandler(retrySignal, (args) => {
    if (state.status === 'FAILED') state.operatorAction = { kind: 'retry', ...args };
  });
  setHandler(cancelSignal, (args) => {
    if (state.status === 'FAILED') state.operatorAction = { kind: 'cancel', ...args };
  });
  return state;
}
