import type { Express, Response } from 'express';
import { z } from 'zod';
import { AppError, badRequest, conflict } from '../common/errors';
import { createHttpApp } from '../common/http';
import type { Logger } from '../common/logger';
import { Ledger } from './ledger';

export interface SandboxOptions {
  /** How long `tok_timeout` waits before answering; long enough that the client gives up. */
  timeoutAnswerMs?: number;
}

const MAX_SLOW_MS = 60000;

const chargeBody = z.strictObject({
  amount: z.number().int().positive(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be 3 uppercase letters'),
  token: z.string(),
  idempotencyKey: z.string().min(1).max(300),
});

// Strict, so a misspelt filter fails instead of returning the whole ledger.
const chargesQuery = z.strictObject({
  idempotencyKey: z.string().min(1).max(300).optional(),
});

type Behaviour =
  | { kind: 'approve'; delayMs: number }
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
  return { kind: 'invalid' };
}

const providerUnavailable = (): AppError =>
  new AppError(503, 'provider_unavailable', 'the provider is unavailable, retry later', undefined, {
    'Retry-After': '1',
  });

/**
 * A stand-in for an external PSP. Charges are keyed by idempotency key; the token picks
 * what happens (attempts are counted per key; tokens never reach the log):
 *   tok_visa       approves (201; 200 when the key already holds a charge)
 *   tok_decline    402 insufficient_funds, nothing recorded
 *   tok_flaky_<n>  503 provider_unavailable for the first n attempts, then approves
 *   tok_slow_<ms>  approves, answering after ms (at most 60 s)
 *   tok_timeout    records the charge but answers only after `timeoutAnswerMs`
 *   tok_down       always 503 provider_unavailable
 *   tok_lost       records the charge, but every answer to it comes after `timeoutAnswerMs`
 *   tok_lost_lookup_<n>  as tok_lost, and the first n lookups of its key answer 503
 *   anything else  400 invalid_token
 */
export function createSandboxApp(logger: Logger, options: SandboxOptions = {}): Express {
  const timeoutAnswerMs = options.timeoutAnswerMs ?? 60000;
  const ledger = new Ledger();
  /** Lookups still to fail, per idempotency key of a tok_lost_lookup_<n> charge. */
  const failingLookups = new Map<string, number>();

  return createHttpApp(logger, (app) => {
    app.post('/charges', (req, res) => {
      const body = chargeBody.parse(req.body);
      const { amount, currency, idempotencyKey } = body;
      const behaviour = behaviourOf(body.token);

      // From here to `ledger.record` nothing awaits: concurrent same-key requests cannot race.
      const attempt = ledger.attempt(idempotencyKey, body);
      if (attempt.kind === 'conflict') {
        throw conflict(
          'idempotency_key_reused',
          'this idempotency key was already used with a different amount, currency or token',
        );
      }
      if (attempt.charge) {
        answerLater(res, behaviour.kind === 'lost' ? timeoutAnswerMs : 0, 200, attempt.charge);
        return;
      }

      const approve = (delayMs: number): void => {
        const charge = ledger.record(idempotencyKey, amount, currency);
        logger.info({ chargeId: charge.id, idempotencyKey, amount, currency }, 'charge recorded');
        answerLater(res, delayMs, 201, charge);
      };
      const log = { idempotencyKey, attempt: attempt.attempts };
      switch (behaviour.kind) {
        case 'approve':
          approve(behaviour.delayMs);
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
            logger.debug(log, 'charge attempt failed: flaky');
            throw providerUnavailable();
          }
          approve(0);
          return;
        case 'down':
          logger.debug(log, 'charge attempt failed: down');
          throw providerUnavailable();
        case 'decline':
          logger.debug(log, 'charge declined');
          throw new AppError(402, 'insufficient_funds', 'the card has insufficient funds');
        case 'invalid':
          logger.debug(log, 'charge rejected: invalid token');
          throw badRequest('invalid_token', 'the token is not a valid payment method');
        default: {
          const unreachable: never = behaviour;
          throw new Error(`unhandled behaviour ${JSON.stringify(unreachable)}`);
        }
      }
    });

    app.get('/charges', (req, res) => {
      const { idempotencyKey } = chargesQuery.parse(req.query);
      if (idempotencyKey === undefined) {
        res.json({ data: ledger.list() });
        return;
      }
      const failing = failingLookups.get(idempotencyKey) ?? 0;
      if (failing > 0) {
        failingLookups.set(idempotencyKey, failing - 1);
        throw providerUnavailable();
      }
      const charge = ledger.find(idempotencyKey);
      res.json({ data: charge ? [charge] : [] });
    });
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
