import type { Express, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { AppError, badRequest, conflict } from '../common/errors';
import { createHttpApp } from '../common/http';
import type { Logger } from '../common/logger';
import { Ledger } from './ledger';
import type { FollowUpRequest, Refusal } from './ledger';

export interface SandboxOptions {
  /** How long `tok_timeout` waits before answering; long enough that the client gives up. */
  timeoutAnswerMs?: number;
}

const MAX_SLOW_MS = 60000;

const amountField = z.number().int().positive();
const keyField = z.string().min(1).max(300);
const idField = z.string().min(1).max(100);

const chargeBody = z.strictObject({
  amount: amountField,
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be 3 uppercase letters'),
  token: z.string(),
  idempotencyKey: keyField,
});

const captureBody = z.strictObject({
  authorizationId: idField,
  amount: amountField,
  idempotencyKey: keyField,
});

const voidBody = z.strictObject({ authorizationId: idField, idempotencyKey: keyField });

const refundBody = z.strictObject({
  paymentId: idField,
  amount: amountField,
  idempotencyKey: keyField,
});

// Strict, so a misspelt filter fails instead of returning the whole ledger.
const lookupQuery = z.strictObject({ idempotencyKey: keyField.optional() });

type FollowUpKind = FollowUpRequest['kind'];
const FOLLOW_UP_KINDS: readonly FollowUpKind[] = ['capture', 'void', 'refund'];

/**
 * How one kind of later operation on a payment fails. Kept per payment instead of its
 * token, which the sandbox must not hold.
 */
interface FollowUpFailure {
  op: FollowUpKind;
  failure:
    | { kind: 'declined' }
    | { kind: 'flaky'; failures: number }
    | { kind: 'timeout' }
    | { kind: 'down' };
}

type Behaviour =
  | { kind: 'approve'; delayMs: number; followUp?: FollowUpFailure }
  | { kind: 'flaky'; failures: number }
  | { kind: 'timeout' }
  | { kind: 'lost'; failedLookups: number }
  | { kind: 'decline' }
  | { kind: 'invalid' }
  | { kind: 'down' };

function behaviourOf(token: string): Behaviour {
  if (token === 'tok_visa') return { kind: 'approve', delayMs: 0 };
  if (token === 'tok_decline') return { kind: 'decline' };
  if (token === 'tok_timeout') return { kind: 'timeout' };
  if (token === 'tok_down') return { kind: 'down' };
  if (token === 'tok_lost') return { kind: 'lost', failedLookups: 0 };
  const lostLookup = /^tok_lost_lookup_(\d{1,9})$/.exec(token);
  if (lostLookup?.[1]) return { kind: 'lost', failedLookups: Number(lostLookup[1]) };
  const flaky = /^tok_flaky_(\d{1,9})$/.exec(token);
  if (flaky?.[1]) return { kind: 'flaky', failures: Number(flaky[1]) };
  const slow = /^tok_slow_(\d{1,9})$/.exec(token);
  if (slow?.[1]) return { kind: 'approve', delayMs: Math.min(Number(slow[1]), MAX_SLOW_MS) };
  const followUp = followUpFailureOf(token);
  if (followUp) return { kind: 'approve', delayMs: 0, followUp };
  return { kind: 'invalid' };
}

function followUpFailureOf(token: string): FollowUpFailure | undefined {
  const [, name, how] =
    /^tok_(capture|void|refund)_(declined|timeout|down|flaky_\d{1,9})$/.exec(token) ?? [];
  const op = FOLLOW_UP_KINDS.find((kind) => kind === name);
  if (!op || how === undefined) return undefined;
  if (how === 'declined' || how === 'timeout' || how === 'down')
    return { op, failure: { kind: how } };
  return { op, failure: { kind: 'flaky', failures: Number(how.slice('flaky_'.length)) } };
}

const providerUnavailable = (): AppError =>
  new AppError(503, 'provider_unavailable', 'the provider is unavailable, retry later', undefined, {
    'Retry-After': '1',
  });

const keyReused = (): AppError =>
  conflict(
    'idempotency_key_reused',
    'this idempotency key was already used for a different request',
  );

const refusals: Record<Refusal, { status: number; message: string }> = {
  authorization_not_found: { status: 404, message: 'no authorization has this id' },
  payment_not_found: { status: 404, message: 'no charge or capture has this id' },
  authorization_voided: { status: 409, message: 'the authorization was voided' },
  authorization_already_captured: {
    status: 409,
    message: 'the authorization was already captured',
  },
  amount_exceeds_authorized: {
    status: 422,
    message: 'the amount is more than the authorization holds',
  },
  refund_exceeds_payment: {
    status: 422,
    message: 'the refunds would add up to more than the payment',
  },
};

/**
 * A stand-in for an external PSP. Every request carries an idempotency key: the same key
 * and request answer the same movement (200 once it exists), the same key with another
 * request is 409 idempotency_key_reused, and attempts are counted per key.
 *
 * The token of a charge or an authorization picks what that first call does (tokens
 * never reach the log):
 *   tok_visa       approves (201; 200 when the key already holds the movement)
 *   tok_decline    402 insufficient_funds, nothing recorded
 *   tok_flaky_<n>  503 provider_unavailable for the first n attempts, then approves
 *   tok_slow_<ms>  approves, answering after ms (at most 60 s)
 *   tok_timeout    records the movement but answers only after `timeoutAnswerMs`
 *   tok_down       always 503 provider_unavailable
 *   tok_lost       records the movement, but every answer to it comes after `timeoutAnswerMs`
 *   tok_lost_lookup_<n>  as tok_lost, and the first n lookups of its key (on /charges or
 *                  /movements) answer 503
 *   anything else  400 invalid_token
 *
 * These approve the first call, and make one kind of later operation on that payment
 * (<op> is capture, void or refund; a refund of a capture follows its authorization):
 *   tok_<op>_declined  402 <op>_declined, nothing recorded
 *   tok_<op>_flaky_<n> 503 provider_unavailable for the first n attempts of each key, then succeeds
 *   tok_<op>_timeout   records the movement but answers only after `timeoutAnswerMs`
 *   tok_<op>_down      always 503 provider_unavailable
 * A follow-up is checked against the ledger (404, 409, 422) before its failure applies.
 */
export function createSandboxApp(logger: Logger, options: SandboxOptions = {}): Express {
  const timeoutAnswerMs = options.timeoutAnswerMs ?? 60000;
  const ledger = new Ledger();
  /** Lookups still to fail, per idempotency key of a tok_lost_lookup_<n> movement. */
  const failingLookups = new Map<string, number>();
  /** Per charge or authorization id, how its later operations of one kind fail. */
  const followUpFailures = new Map<string, FollowUpFailure>();

  const firstCall =
    (kind: 'charge' | 'authorization'): RequestHandler =>
    (req, res) => {
      const body = chargeBody.parse(req.body);
      const { amount, currency, token, idempotencyKey } = body;
      const behaviour = behaviourOf(token);

      // From here to the record nothing awaits: concurrent same-key requests cannot race.
      const attempt = ledger.attempt(idempotencyKey, { kind, amount, currency, token });
      if (attempt.kind === 'conflict') throw keyReused();
      const existing = kind === 'charge' ? attempt.charge : attempt.movement;
      if (existing) {
        answerLater(res, behaviour.kind === 'lost' ? timeoutAnswerMs : 0, 200, existing);
        return;
      }

      const approve = (delayMs: number, followUp?: FollowUpFailure): void => {
        const recorded =
          kind === 'charge'
            ? ledger.record(idempotencyKey, amount, currency)
            : ledger.recordAuthorization(idempotencyKey, amount, currency);
        if (followUp) followUpFailures.set(recorded.id, followUp);
        logger.info({ id: recorded.id, idempotencyKey, amount, currency }, `${kind} recorded`);
        answerLater(res, delayMs, 201, recorded);
      };
      const log = { idempotencyKey, attempt: attempt.attempts };
      switch (behaviour.kind) {
        case 'approve':
          approve(behaviour.delayMs, behaviour.followUp);
          return;
        case 'timeout':
          approve(timeoutAnswerMs);
          return;
        case 'lost':
          if (behaviour.failedLookups > 0)
            failingLookups.set(idempotencyKey, behaviour.failedLookups);
          approve(timeoutAnswerMs);
          return;
        case 'flaky':
          if (attempt.attempts <= behaviour.failures) {
            logger.debug(log, `${kind} attempt failed: flaky`);
            throw providerUnavailable();
          }
          approve(0);
          return;
        case 'down':
          logger.debug(log, `${kind} attempt failed: down`);
          throw providerUnavailable();
        case 'decline':
          logger.debug(log, `${kind} declined`);
          throw new AppError(402, 'insufficient_funds', 'the card has insufficient funds');
        case 'invalid':
          logger.debug(log, `${kind} rejected: invalid token`);
          throw badRequest('invalid_token', 'the token is not a valid payment method');
        default: {
          const unreachable: never = behaviour;
          throw new Error(`unhandled behaviour ${JSON.stringify(unreachable)}`);
        }
      }
    };

  const followUp = (request: FollowUpRequest, idempotencyKey: string, res: Response): void => {
    // From here to the record nothing awaits, so racing requests (two refunds, a capture
    // and a void) are decided one after the other against the same ledger.
    const attempt = ledger.attempt(idempotencyKey, request);
    if (attempt.kind === 'conflict') throw keyReused();
    if (attempt.movement) {
      res.status(200).json(attempt.movement);
      return;
    }
    const check = ledger.check(request);
    if (check.kind === 'refused') {
      const { status, message } = refusals[check.code];
      throw new AppError(status, check.code, message);
    }
    const planned = followUpFailures.get(check.originId);
    const failure = planned?.op === request.kind ? planned.failure : undefined;
    const log = { idempotencyKey, attempt: attempt.attempts };
    switch (failure?.kind) {
      case undefined:
      case 'timeout':
        break;
      case 'flaky':
        if (attempt.attempts > failure.failures) break;
        logger.debug(log, `${request.kind} attempt failed: flaky`);
        throw providerUnavailable();
      case 'down':
        logger.debug(log, `${request.kind} attempt failed: down`);
        throw providerUnavailable();
      case 'declined':
        logger.debug(log, `${request.kind} declined`);
        throw new AppError(
          402,
          `${request.kind}_declined`,
          `the provider declined the ${request.kind}`,
        );
      default: {
        const unreachable: never = failure;
        throw new Error(`unhandled follow-up failure ${JSON.stringify(unreachable)}`);
      }
    }
    const movement = ledger.recordFollowUp(idempotencyKey, request);
    const { id, amount, parentId } = movement;
    logger.info({ id, idempotencyKey, amount, parentId }, `${request.kind} recorded`);
    answerLater(res, failure?.kind === 'timeout' ? timeoutAnswerMs : 0, 201, movement);
  };

  /** Lists everything, or finds by key; the first lookups of a tok_lost_lookup_<n> key fail. */
  const lookup =
    <T>(all: () => readonly T[], byKey: (key: string) => T | undefined): RequestHandler =>
    (req, res) => {
      const { idempotencyKey } = lookupQuery.parse(req.query);
      if (idempotencyKey === undefined) {
        res.json({ data: all() });
        return;
      }
      const failing = failingLookups.get(idempotencyKey) ?? 0;
      if (failing > 0) {
        failingLookups.set(idempotencyKey, failing - 1);
        throw providerUnavailable();
      }
      const found = byKey(idempotencyKey);
      res.json({ data: found ? [found] : [] });
    };

  return createHttpApp(logger, (app) => {
    app.post('/charges', firstCall('charge'));
    app.post('/authorizations', firstCall('authorization'));

    app.post('/captures', (req, res) => {
      const { authorizationId, amount, idempotencyKey } = captureBody.parse(req.body);
      followUp({ kind: 'capture', authorizationId, amount }, idempotencyKey, res);
    });

    app.post('/voids', (req, res) => {
      const { authorizationId, idempotencyKey } = voidBody.parse(req.body);
      followUp({ kind: 'void', authorizationId }, idempotencyKey, res);
    });

    app.post('/refunds', (req, res) => {
      const { paymentId, amount, idempotencyKey } = refundBody.parse(req.body);
      followUp({ kind: 'refund', paymentId, amount }, idempotencyKey, res);
    });

    app.get(
      '/charges',
      lookup(
        () => ledger.list(),
        (key) => ledger.find(key),
      ),
    );
    app.get(
      '/movements',
      lookup(
        () => ledger.movements(),
        (key) => ledger.findMovement(key),
      ),
    );
  });
}

/** Answers after `delayMs`; the timer goes when the connection does, so it cannot outlive it. */
function answerLater(res: Response, delayMs: number, status: number, body: unknown): void {
  if (delayMs <= 0) {
    res.status(status).json(body);
    return;
  }
  const timer = setTimeout(() => {
    if (!res.destroyed) res.status(status).json(body);
  }, delayMs);
  res.once('close', () => clearTimeout(timer));
}
