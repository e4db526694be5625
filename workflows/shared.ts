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
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { PaymentFailureDetails } from '../activities';
import { cancelSignal, DECLINE_TYPES, retrySignal, statusQuery } from './contract';
import type { DeclineType, OperatorAction, PurchaseInput, PurchaseStatus } from './contract';

type PaymentActivities = ReturnType<typeof activities.createPaymentActivities>;

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
    const details =
      cause instanceof ApplicationFailure
        ? (cause.details?.[0] as PaymentFailureDetails | undefined)
        : undefined;
    const attempts = details?.attempt ?? input.retry.maximumAttempts;
    const found = await findCharge(idempotencyKey).then(
      (c) => c?.id,
      () => undefined,
    );
    if (found) return { kind: 'approved', chargeId: found, attempts };
    return {
      kind: 'failed',
      attempts,
      type: cause instanceof ApplicationFailure ? (cause.type ?? 'Unknown') : 'ActivityTimeout',
      message: cause?.message ?? err.message,
      details,
    };
  }
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
