import { readDeadLetters } from '../../ops/dlq';
import { createKafka } from '../../common/kafka';
import { eventually } from '../config';
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
  const row = await platform.prisma.purchase.findUniqueOrThrow({ where: { id: purchaseId } });
  const res = await fetch(
    `${platform.sandboxUrl}/charges?idempotencyKey=${encodeURIComponent(row.workflowId)}`,
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
