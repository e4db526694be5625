import pino from 'pino';
import type { Logger } from 'pino';

/** Paths whose values never reach a log line. */
export const REDACT_PATHS = [
  'authorization',
  'apiKey',
  'token',
  'password',
  'cardNumber',
  // Webhook signing secrets (whsec_…), current and previous.
  'secret',
  'secrets',
  '*.secret',
  '*.secrets',
  '*.authorization',
  '*.apiKey',
  '*.token',
  '*.password',
  '*.cardNumber',
  'req.headers.authorization',
  'headers.authorization',
  'paymentMethod.token',
  '*.paymentMethod.token',
];

export function createLogger(
  service: string,
  level: string,
  destination?: pino.DestinationStream,
): Logger {
  const options = {
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
