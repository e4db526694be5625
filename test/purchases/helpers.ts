import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import { promisify } from 'node:util';
import { readDeadLetters } from '../../ops/dlq';
import { chargeKeyFor } from '../../workflows/contract';
import { createKafka } from '../../common/kafka';
import { eventually, TEST_NAMESPACE } from '../config';
import type { Platform } from './harness';
import { getPurchase } from './harness';

export async function finalState(
  platform: Platform,
  id: string,
  statuses: string[],
  timeoutMs = 60000,
): Promise<Record<string, unknown>> {
  return eventually(async () => {
    const { json } = await getPurchase(platform, id);
    return statuses.includes(json.status as string) ? json : undefined;
  }, timeoutMs);
}

export async function chargesFor(platform: Platform, purchaseId: string): Promise<unknown[]> {
  const res = await fetch(
    `${platform.sandboxUrl}/charges?idempotencyKey=${encodeURIComponent(chargeKeyFor(purchaseId))}`,
  );
  return ((await res.json()) as { data: unknown[] }).data;
}

export async function stockOf(platform: Platform, productId: string): Promise<number> {
  return (await platform.prisma.product.findUniqueOrThrow({ where: { id: productId } })).stock;
}

export async function deadLettersFor(platform: Platform, purchaseId: string) {
  const kafka = createKafka(platform.config.KAFKA_BROKERS, 'test-dlq');
  return (await readDeadLetters(kafka)).filter((l) => l.purchaseId === purchaseId);
}

export const timelineOf = (purchase: Record<string, unknown>): string[] =>
  (purchase.timeline as { to: string }[]).map((t) => t.to);

/** Every charge of the platform's own sandbox, oldest first. */
export async function ledger(
  platform: Platform,
): Promise<{ id: string; amount: number; idempotencyKey: string }[]> {
  const res = await fetch(`${platform.sandboxUrl}/charges`);
  return ((await res.json()) as { data: { id: string; amount: number; idempotencyKey: string }[] })
    .data;
}

export interface Movement {
  id: string;
  kind: 'charge' | 'authorization' | 'capture' | 'void' | 'refund';
  amount: number;
  idempotencyKey: string;
}

/** The sandbox's movements of one purchase: every key the gateway sends starts with its id. */
export async function movementsOf(platform: Platform, purchaseId: string): Promise<Movement[]> {
  const res = await fetch(`${platform.sandboxUrl}/movements`);
  const { data } = (await res.json()) as { data: Movement[] };
  return data.filter((m) => m.idempotencyKey.startsWith(`${purchaseId}:`));
}

/** The money that moved to the merchant for a purchase: charges and captures less refunds. */
export const netOf = (movements: Movement[]): number =>
  movements.reduce(
    (net, m) =>
      net +
      (m.kind === 'charge' || m.kind === 'capture'
        ? m.amount
        : m.kind === 'refund'
          ? -m.amount
          : 0),
    0,
  );

/** The operator CLI, compiled (`npm run build`), against the same stack. */
export async function opsCli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['dist/ops/cli.js', ...args], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', TEMPORAL_NAMESPACE: TEST_NAMESPACE },
  });
  return stdout;
}

/** The stack's `temporal` CLI, as the runbook writes its commands. */
export async function temporalCli(...args: string[]): Promise<string> {
  const cache = process.env.GATEWAY_CACHE ?? `${homedir()}/.cache/gateway-payment`;
  const { stdout } = await promisify(execFile)(`${cache}/bin/temporal`, [
    ...args,
    '--address',
    '127.0.0.1:7233',
    '--namespace',
    TEST_NAMESPACE,
  ]);
  return stdout;
}
