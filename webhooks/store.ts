import { randomBytes } from 'node:crypto';
import { EncryptionCodec, openJson, sealJson } from '../common/codec';
import type { PayloadKeys } from '../common/codec';
import type { Config } from '../common/config';
import type { KeysetPosition } from '../common/cursor';
import type { PrismaClient } from '../common/db';
import type { Prisma, WebhookEndpoint } from '../generated/prisma/client';

/*
 * The one owner of webhook_endpoints, webhook_events and webhook_deliveries: the api,
 * the dispatcher, the delivery activity and the ops CLI all come through here.
 */

export type EndpointStatus = 'enabled' | 'disabled';

/** An endpoint as the rest of the code sees it: never a secret. */
export interface Endpoint {
  id: string;
  merchantId: string;
  url: string;
  events: string[];
  status: EndpointStatus;
  failingSince: Date | null;
  disabledAt: Date | null;
  /** Set while the secret before the last rotation still signs. */
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
}

/** What the delivery activity needs: the endpoint and the secrets that sign now. */
export interface DeliveryTarget extends Endpoint {
  /** The current secret first, then the previous one while its grace lasts. */
  secrets: string[];
}

export interface StoredEvent {
  id: string;
  merchantId: string;
  type: string;
  purchaseId: string | null;
  /** Exactly what the webhook body carries. */
  payload: Record<string, unknown>;
  createdAt: Date;
}

export interface NewEvent {
  id: string;
  merchantId: string;
  type: string;
  purchaseId: string | null;
  payload: Record<string, unknown>;
}

export interface DeliveryAttempt {
  id: string;
  eventId: string;
  endpointId: string;
  workflowId: string;
  attempt: number;
  url: string;
  statusCode: number | null;
  error: string | null;
  latencyMs: number;
  responseBody: string | null;
  createdAt: Date;
}

export type NewAttempt = Omit<DeliveryAttempt, 'id' | 'attempt' | 'createdAt'>;

export const newEndpointId = (): string => `we_${randomBytes(16).toString('hex')}`;
const newSecret = (): string => `whsec_${randomBytes(32).toString('base64url')}`;

function toEndpoint(row: WebhookEndpoint): Endpoint {
  const stillSigns = row.previousSecretExpiresAt && row.previousSecretExpiresAt > new Date();
  return {
    id: row.id,
    merchantId: row.merchantId,
    url: row.url,
    events: row.events as string[],
    status: row.status as EndpointStatus,
    failingSince: row.failingSince,
    disabledAt: row.disabledAt,
    previousSecretExpiresAt: stillSigns ? row.previousSecretExpiresAt : null,
    createdAt: row.createdAt,
  };
}

const toEvent = (row: {
  id: string;
  merchantId: string;
  type: string;
  purchaseId: string | null;
  payload: unknown;
  createdAt: Date;
}): StoredEvent => ({ ...row, payload: row.payload as Record<string, unknown> });

const toAttempt = (row: Omit<DeliveryAttempt, 'id'> & { id: bigint }): DeliveryAttempt => ({
  ...row,
  id: row.id.toString(),
});

export type WebhookStore = ReturnType<typeof createWebhookStore>;

export function createWebhookStore(deps: {
  prisma: PrismaClient;
  config: PayloadKeys & Pick<Config, 'TEMPORAL_NAMESPACE'>;
}) {
  const { prisma } = deps;
  // Secrets are kept sealed under the payload keys: a copy of the table cannot sign.
  const codec = new EncryptionCodec(deps.config);
  const seal = async (secret: string) =>
    (await sealJson(codec, secret)) as unknown as Prisma.InputJsonValue;
  const open = (stored: unknown) => openJson<string>(codec, stored);

  return {
    async countEndpoints(merchantId: string): Promise<number> {
      return prisma.webhookEndpoint.count({ where: { merchantId } });
    },

    /** The new endpoint and its secret, which nothing shows again. */
    async createEndpoint(
      merchantId: string,
      fields: { url: string; events: string[] },
    ): Promise<{ endpoint: Endpoint; secret: string }> {
      const secret = newSecret();
      const row = await prisma.webhookEndpoint.create({
        data: {
          id: newEndpointId(),
          merchantId,
          namespace: deps.config.TEMPORAL_NAMESPACE,
          url: fields.url,
          events: fields.events,
          secret: await seal(secret),
        },
      });
      return { endpoint: toEndpoint(row), secret };
    },

    async listEndpoints(merchantId: string): Promise<Endpoint[]> {
      const rows = await prisma.webhookEndpoint.findMany({
        where: { merchantId },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      });
      return rows.map(toEndpoint);
    },

    /** The endpoint, if it exists and, when a merchant is named, is that merchant's. */
    async findEndpoint(id: string, merchantId?: string): Promise<Endpoint | undefined> {
      const row = await prisma.webhookEndpoint.findFirst({
        where: { id, ...(merchantId && { merchantId }) },
      });
      return row ? toEndpoint(row) : undefined;
    },

    async deleteEndpoint(id: string, merchantId: string): Promise<boolean> {
      const { count } = await prisma.webhookEndpoint.deleteMany({ where: { id, merchantId } });
      return count === 1;
    },

    /**
     * A new secret; the current one becomes the previous and keeps signing until
     * `graceMs` from now. A secret still in an earlier grace is dropped.
     */
    async rotateSecret(
      id: string,
      graceMs: number,
      merchantId?: string,
    ): Promise<{ endpoint: Endpoint; secret: string } | undefined> {
      const secret = newSecret();
      const sealed = await seal(secret);
      return prisma.$transaction(async (tx) => {
        const row = await tx.webhookEndpoint.findFirst({
          where: { id, ...(merchantId && { merchantId }) },
        });
        if (!row) return undefined;
        const updated = await tx.webhookEndpoint.update({
          where: { id },
          data: {
            secret: sealed,
            previousSecret: row.secret as Prisma.InputJsonValue,
            previousSecretExpiresAt: new Date(Date.now() + graceMs),
          },
        });
        return { endpoint: toEndpoint(updated), secret };
      });
    },

    /** Enabled again, with its failure clock cleared; false when there is no such endpoint. */
    async enableEndpoint(id: string): Promise<boolean> {
      const { count } = await prisma.webhookEndpoint.updateMany({
        where: { id },
        data: { status: 'enabled', failingSince: null, disabledAt: null },
      });
      return count === 1;
    },

    /** The merchant's enabled endpoints subscribed to `type` that this namespace delivers to. */
    async subscribedEndpoints(merchantId: string, type: string): Promise<Endpoint[]> {
      const rows = await prisma.webhookEndpoint.findMany({
        where: { merchantId, status: 'enabled', namespace: deps.config.TEMPORAL_NAMESPACE },
      });
      return rows.map(toEndpoint).filter((e) => e.events.includes(type));
    },

    async deliveryTarget(id: string): Promise<DeliveryTarget | undefined> {
      const row = await prisma.webhookEndpoint.findUnique({ where: { id } });
      if (!row) return undefined;
      const endpoint = toEndpoint(row);
      const secrets = [await open(row.secret)];
      if (endpoint.previousSecretExpiresAt && row.previousSecret) {
        secrets.push(await open(row.previousSecret));
      }
      return { ...endpoint, secrets };
    },

    /** A success ends the endpoint's failing streak. */
    async markSucceeded(id: string): Promise<void> {
      await prisma.webhookEndpoint.updateMany({
        where: { id, failingSince: { not: null } },
        data: { failingSince: null },
      });
    },

    /**
     * Starts the endpoint's failing streak if none runs, and disables it once the streak
     * is `disableAfterMs` old, recording `announcement` in the same transaction. Returns
     * the announcement only to the call that disabled it, so the disabling is announced
     * once however many attempts fail at the same moment.
     */
    async markFailed(
      id: string,
      now: Date,
      disableAfterMs: number,
      announcement: NewEvent,
    ): Promise<StoredEvent | undefined> {
      await prisma.webhookEndpoint.updateMany({
        where: { id, failingSince: null },
        data: { failingSince: now },
      });
      return prisma.$transaction(async (tx) => {
        const { count } = await tx.webhookEndpoint.updateMany({
          where: {
            id,
            status: 'enabled',
            failingSince: { lte: new Date(now.getTime() - disableAfterMs) },
          },
          data: { status: 'disabled', disabledAt: now },
        });
        if (count === 0) return undefined;
        const row = await tx.webhookEvent.create({
          data: { ...announcement, payload: announcement.payload as Prisma.InputJsonValue },
        });
        return toEvent(row);
      });
    },

    /** Records the event once; a repeat returns the row as first recorded. */
    async recordEvent(event: NewEvent): Promise<StoredEvent> {
      await prisma.webhookEvent.createMany({
        data: [{ ...event, payload: event.payload as Prisma.InputJsonValue }],
        skipDuplicates: true,
      });
      return toEvent(await prisma.webhookEvent.findUniqueOrThrow({ where: { id: event.id } }));
    },

    async findEvent(id: string, merchantId?: string): Promise<StoredEvent | undefined> {
      const row = await prisma.webhookEvent.findFirst({
        where: { id, ...(merchantId && { merchantId }) },
      });
      return row ? toEvent(row) : undefined;
    },

    /** Newest first; one more than `limit`, so the caller knows whether a page follows. */
    async listEvents(
      merchantId: string,
      limit: number,
      after?: KeysetPosition,
    ): Promise<StoredEvent[]> {
      const rows = await prisma.webhookEvent.findMany({
        where: {
          merchantId,
          ...(after && {
            OR: [
              { createdAt: { lt: after.createdAt } },
              { createdAt: after.createdAt, id: { lt: after.id } },
            ],
          }),
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: limit + 1,
      });
      return rows.map(toEvent);
    },

    /**
     * One attempt into the log, numbered after the attempts already there for this event
     * and endpoint (two attempts at the same instant may share a number).
     */
    async recordAttempt(attempt: NewAttempt): Promise<DeliveryAttempt> {
      const before = await prisma.webhookDelivery.count({
        where: { eventId: attempt.eventId, endpointId: attempt.endpointId },
      });
      const row = await prisma.webhookDelivery.create({
        data: { ...attempt, attempt: before + 1 },
      });
      return toAttempt(row);
    },

    /** The event's attempts, newest first. */
    async listAttempts(eventId: string, limit: number): Promise<DeliveryAttempt[]> {
      const rows = await prisma.webhookDelivery.findMany({
        where: { eventId },
        orderBy: { id: 'desc' },
        take: limit,
      });
      return rows.map(toAttempt);
    },
  };
}
