/*
 * What the api, the workflow and the activities agree on. Safe to import from workflow
 * code: no I/O, nothing from Node.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export const PURCHASE_STATUSES = [
  'RECEIVED',
  'PROCESSING',
  'APPROVED',
  'DECLINED',
  'REJECTED',
  'DUPLICATE',
  'FAILED',
  'CANCELED',
  'AUTHORIZED',
  'VOIDED',
  'PARTIALLY_REFUNDED',
  'REFUNDED',
] as const;
export type PurchaseStatus = (typeof PURCHASE_STATUSES)[number];

/** Who may make a transition: the workflow on its own, or only on an operator's word. */
export type Actor = 'workflow' | 'operator';

/**
 * Every allowed status change, and who may make it. Anything else is refused, by the
 * database write too (activities/purchases.ts). DECLINED, REJECTED, DUPLICATE, CANCELED,
 * VOIDED and REFUNDED are terminal; FAILED moves on only on an operator's retry or cancel.
 * APPROVED means captured: refunds (workflows/refund.ts) move it on. A second partial
 * refund leaves PARTIALLY_REFUNDED where it is and changes only the refunded amount.
 */
export const TRANSITIONS: Record<PurchaseStatus, Partial<Record<PurchaseStatus, Actor>>> = {
  RECEIVED: {
    PROCESSING: 'workflow',
    DUPLICATE: 'workflow',
    REJECTED: 'workflow',
    CANCELED: 'operator',
  },
  PROCESSING: {
    APPROVED: 'workflow',
    AUTHORIZED: 'workflow',
    DECLINED: 'workflow',
    FAILED: 'workflow',
  },
  FAILED: { PROCESSING: 'operator', CANCELED: 'operator' },
  AUTHORIZED: { APPROVED: 'workflow', VOIDED: 'workflow' },
  APPROVED: { PARTIALLY_REFUNDED: 'workflow', REFUNDED: 'workflow' },
  PARTIALLY_REFUNDED: { REFUNDED: 'workflow' },
  DECLINED: {},
  REJECTED: {},
  DUPLICATE: {},
  CANCELED: {},
  VOIDED: {},
  REFUNDED: {},
};

export function canTransition(from: PurchaseStatus, to: PurchaseStatus, by: Actor): boolean {
  const needs = TRANSITIONS[from][to];
  return needs !== undefined && (needs === 'workflow' || by === 'operator');
}

/** The statuses `by` may move a purchase to `to` from. */
export function allowedFrom(to: PurchaseStatus, by: Actor): PurchaseStatus[] {
  return PURCHASE_STATUSES.filter((from) => canTransition(from, to, by));
}

export const searchAttributes = {
  purchaseId: defineSearchAttributeKey('PurchaseId', SearchAttributeType.KEYWORD),
  idempotencyKey: defineSearchAttributeKey('IdempotencyKey', SearchAttributeType.KEYWORD),
  merchantId: defineSearchAttributeKey('MerchantId', SearchAttributeType.KEYWORD),
  customerId: defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('PurchaseStatus', SearchAttributeType.KEYWORD),
  amountMinor: defineSearchAttributeKey('AmountMinor', SearchAttributeType.INT),
};

/** The search attributes a purchase workflow starts with; the workflow keeps status current. */
export function initialSearchAttributes(input: PurchaseInput) {
  return [
    { key: searchAttributes.purchaseId, value: input.purchaseId },
    { key: searchAttributes.idempotencyKey, value: input.idempotencyKey },
    { key: searchAttributes.merchantId, value: input.merchantId },
    { key: searchAttributes.customerId, value: input.customerId },
    { key: searchAttributes.status, value: 'RECEIVED' },
    { key: searchAttributes.amountMinor, value: input.amountMinor },
  ];
}

export interface PurchaseLine {
  productId: string;
  quantity: number;
  unitPriceMinor: number;
}

export interface PaymentRetry {
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
  maximumAttempts: number;
  /** The provider call's own timeout; the activity's start-to-close is a little longer. */
  providerTimeoutMs: number;
}

export interface PurchaseInput {
  purchaseId: string;
  merchantId: string;
  customerId: string;
  idempotencyKey: string;
  amountMinor: number;
  currency: string;
  items: PurchaseLine[];
  token: string;
  metadata?: Record<string, string>;
  createdAt: string;
  dedupWindowMs: number;
  paymentsTaskQueue: string;
  retry: PaymentRetry;
  /** `manual` authorizes only and waits for a capture or a void; absent means automatic. */
  captureMethod?: CaptureMethod;
  /** How long a manual authorization waits before the workflow voids it by itself. */
  authorizationTtlMs?: number;
}

export const CAPTURE_METHODS = ['automatic', 'manual'] as const;
export type CaptureMethod = (typeof CAPTURE_METHODS)[number];

export interface PurchaseResult {
  status: PurchaseStatus;
  reason?: string;
  chargeId?: string;
}

/** Failure types of the charge activity; declines are final, the rest are retried. */
export const DECLINE_TYPES = ['CardDeclined', 'InsufficientFunds', 'InvalidToken'] as const;
export type DeclineType = (typeof DECLINE_TYPES)[number];
/** The failure type of a refused authorize, capture, void or refund; details carry `{ reason }`. */
export const MOVEMENT_REFUSED = 'MovementRefused';
export const RETRYABLE_PAYMENT_TYPES = ['ProviderUnavailable', 'ProviderTimeout'] as const;

/** Who acted and why; both go into the purchase's timeline. */
export interface OperatorAction {
  operator?: string;
  reason?: string;
}
export const retrySignal = defineSignal<[OperatorAction?]>('retry');
export const cancelSignal = defineSignal<[OperatorAction?]>('cancel');
export const statusQuery = defineQuery<PurchaseStatus>('status');

/** What a capture or a void asked of an authorized purchase came to. */
export type AuthorizationDecision =
  | { outcome: 'done'; status: PurchaseStatus }
  /** The provider refused, or its retries ran out; the purchase stays AUTHORIZED. */
  | { outcome: 'refused'; reason: string };
/** Capture all or part (`amountMinor`) of the authorized amount. */
export const captureUpdate = defineUpdate<AuthorizationDecision, [{ amountMinor: number }]>(
  'capture',
);
export const voidUpdate = defineUpdate<AuthorizationDecision, []>('void');
/** Why an update was refused before it ran; the api maps the type to 409 or 422. */
export const INVALID_STATE = 'InvalidState';
export const AMOUNT_EXCEEDS_AUTHORIZED = 'AmountExceedsAuthorized';

export const REFUND_STATUSES = ['PENDING', 'SUCCEEDED', 'FAILED'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

export interface RefundInput {
  refundId: string;
  purchaseId: string;
  merchantId: string;
  /** The provider's charge or capture being refunded. */
  paymentId: string;
  amountMinor: number;
  currency: string;
  restock: boolean;
  paymentsTaskQueue: string;
  retry: PaymentRetry;
}

export function refundWorkflowIdFor(refundId: string): string {
  return `refund:${refundId}`;
}

/**
 * The provider keys of a manual purchase's movements. Capture and void carry the round
 * (one per decision the merchant made), so a second capture after a refused one is a new
 * request and not a replay of the first; the provider allows one capture per authorization,
 * so only one of them can move money.
 */
export const authorizeKeyFor = (purchaseId: string): string => `${purchaseId}:authorize`;
export const captureKeyFor = (purchaseId: string, round: number): string =>
  `${purchaseId}:capture:${round}`;
export const voidKeyFor = (purchaseId: string, round: number): string =>
  `${purchaseId}:void:${round}`;
/** Scoped by the purchase too, so a ledger read by purchase id shows its refunds. */
export const refundKeyFor = (purchaseId: string, refundId: string): string =>
  `${purchaseId}:refund:${refundId}`;

/**
 * One workflow id per purchase, and the purchase id is minted once per (merchant,
 * Idempotency-Key): a key reused after it expired makes a new purchase and a new id.
 */
export function workflowIdFor(purchaseId: string): string {
  return `purchase:${purchaseId}`;
}

/**
 * The provider's idempotency key for a purchase's charge: the same for every attempt and
 * operator retry of this purchase, and never another's. 45 characters, far below the 255
 * that Stripe accepts.
 */
export function chargeKeyFor(purchaseId: string): string {
  return `${purchaseId}:charge`;
}

/**
 * Runs started before purchase-scoped ids keyed their charge with the workflow id, which
 * was `purchase:<merchant>:<Idempotency-Key>`; they keep that key (workflows/purchase.ts).
 */
export const PURCHASE_SCOPED_PATCH = 'purchase-scoped-identity';
