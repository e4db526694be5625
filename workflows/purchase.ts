import {
  allHandlersFinished,
  ApplicationFailure,
  CancelledFailure,
  condition,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { EventInput } from '../activities/events';
import type { Settlement } from '../activities/purchases';
import {
  chargeOnce,
  deadLetterData,
  eventsOf,
  LOCAL_STEPS,
  ignoringCancellation,
  moveOnce,
  operatorControls,
} from './shared';
import type { ChargeOutcome, PurchaseState } from './shared';
import {
  AMOUNT_EXCEEDS_AUTHORIZED,
  authorizeKeyFor,
  captureKeyFor,
  captureUpdate,
  chargeKeyFor,
  INVALID_STATE,
  searchAttributes,
  voidKeyFor,
  voidUpdate,
} from './contract';
import type {
  AuthorizationDecision,
  OperatorAction,
  PurchaseInput,
  PurchaseResult,
  PurchaseStatus,
} from './contract';

type Activities = ReturnType<typeof activities.createPurchaseActivities>;

const steps = proxyLocalActivities<Activities>(LOCAL_STEPS);

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
    const event = eventsOf(purchaseId, merchantId);
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

    const manual = input.captureMethod === 'manual';
    const decisions = manual ? authorizationControls(input, state) : undefined;

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
      const outcome = manual ? await authorizeOnce(input) : await chargeOnce(input, chargeKey);
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
      if (outcome.kind === 'approved' && decisions) {
        await settle({
          change: { purchaseId, to: 'AUTHORIZED', attempts, authorizationId: outcome.chargeId },
          event: event('purchase.authorized', round, {
            authorizationId: outcome.chargeId,
            amountMinor: input.amountMinor,
          }),
          topic: 'events',
        });
        const result = await decisions.hold(outcome.chargeId, cancelRequested, settle, event);
        await condition(allHandlersFinished);
        return result;
      }
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

/** The authorize step of a manual purchase, in the charge's terms (approved means authorized). */
async function authorizeOnce(input: PurchaseInput): Promise<ChargeOutcome> {
  const outcome = await moveOnce(input, 'authorize', {
    amountMinor: input.amountMinor,
    currency: input.currency,
    token: input.token,
    idempotencyKey: authorizeKeyFor(input.purchaseId),
  });
  if (outcome.kind === 'done') {
    return { kind: 'approved', chargeId: outcome.movementId, attempts: outcome.attempts };
  }
  if (outcome.kind === 'refused') {
    return {
      kind: 'declined',
      reason: outcome.reason,
      message: `the provider refused the authorization: ${outcome.reason}`,
      attempts: outcome.attempts,
    };
  }
  return outcome;
}

type Settle = (settlement: Settlement) => Promise<void>;
type MakeEvent = (type: string, round: number, data: Record<string, unknown>) => EventInput;
interface Decision {
  kind: 'capture' | 'void';
  amountMinor?: number;
  answer?: AuthorizationDecision;
}

/**
 * A manual purchase's capture and void, as Temporal updates: the validator refuses one on
 * the wrong status, over the amount, or while another is being carried out, so a capture
 * racing a void has one winner and the other caller gets InvalidState. The workflow carries
 * each decision out itself, so an unanswered authorization is voided by a durable timer.
 */
function authorizationControls(input: PurchaseInput, state: PurchaseState) {
  let pending: Decision | undefined;
  const refuse = (type: string, message: string): never => {
    throw ApplicationFailure.create({ type, message, details: [{ status: state.status }] });
  };
  const validate = (): void => {
    if (state.status !== 'AUTHORIZED' || pending) {
      refuse(
        INVALID_STATE,
        `the purchase is ${state.status}${pending ? ` (${pending.kind} in progress)` : ''}`,
      );
    }
  };
  const decide = async (decision: Decision): Promise<AuthorizationDecision> => {
    pending = decision;
    await condition(() => decision.answer !== undefined);
    return decision.answer!;
  };
  setHandler(captureUpdate, ({ amountMinor }) => decide({ kind: 'capture', amountMinor }), {
    validator: ({ amountMinor }) => {
      validate();
      if (!Number.isSafeInteger(amountMinor) || amountMinor <= 0) {
        refuse(AMOUNT_EXCEEDS_AUTHORIZED, 'the amount must be a positive integer');
      }
      if (amountMinor > input.amountMinor) {
        refuse(AMOUNT_EXCEEDS_AUTHORIZED, `at most ${input.amountMinor} can be captured`);
      }
    },
  });
  setHandler(voidUpdate, () => decide({ kind: 'void' }), { validator: validate });

  /** Waits for a decision or the expiry, and carries it out; a refused one waits again. */
  async function hold(
    authorizationId: string,
    cancelRequested: () => boolean,
    settle: Settle,
    event: MakeEvent,
  ): Promise<PurchaseResult> {
    const { purchaseId } = input;
    let expiresAt = Date.now() + (input.authorizationTtlMs ?? 168 * 3600_000);
    for (let round = 1; ; round++) {
      await condition(
        () => pending !== undefined || cancelRequested(),
        Math.max(0, expiresAt - Date.now()),
      );
      const decision = pending ?? { kind: 'void' };
      const why = pending
        ? 'voided_by_merchant'
        : cancelRequested()
          ? 'canceled_from_temporal'
          : 'authorization_expired';
      if (decision.kind === 'capture') {
        const captured = await moveOnce(input, 'capture', {
          authorizationId,
          amountMinor: decision.amountMinor!,
          idempotencyKey: captureKeyFor(purchaseId, round),
        });
        if (captured.kind === 'done') {
          await settle({
            change: {
              purchaseId,
              to: 'APPROVED',
              chargeId: captured.movementId,
              amountCaptured: captured.amountMinor,
            },
            event: event('purchase.captured', round, {
              captureId: captured.movementId,
              amountMinor: captured.amountMinor,
            }),
            topic: 'events',
          });
          decision.answer = { outcome: 'done', status: 'APPROVED' };
          return { status: 'APPROVED', chargeId: captured.movementId };
        }
        decision.answer = { outcome: 'refused', reason: reasonOf(captured) };
        pending = undefined;
        continue;
      }
      const voided = await moveOnce(input, 'voidAuthorization', {
        authorizationId,
        idempotencyKey: voidKeyFor(purchaseId, round),
      });
      // At expiry a refusal means the provider holds nothing any more: the hold is gone.
      if (
        voided.kind === 'done' ||
        (voided.kind === 'refused' && why === 'authorization_expired')
      ) {
        await settle({
          change: { purchaseId, to: 'VOIDED', reason: why },
          release: true,
          event: event('purchase.voided', round, { reason: why }),
          topic: 'events',
        });
        decision.answer = { outcome: 'done', status: 'VOIDED' };
        return { status: 'VOIDED', reason: why };
      }
      decision.answer = { outcome: 'refused', reason: reasonOf(voided) };
      pending = undefined;
      // An expiry whose void failed tries again after the longest retry interval.
      if (why !== 'voided_by_merchant') expiresAt = Date.now() + input.retry.maximumIntervalMs;
    }
  }
  return { hold };
}

function reasonOf(outcome: Exclude<Awaited<ReturnType<typeof moveOnce>>, { kind: 'done' }>) {
  return outcome.kind === 'refused' ? outcome.reason : `provider_failed: ${outcome.type}`;
}
