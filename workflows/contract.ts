/*
 * What the api, the workflow and the activities agree on. Safe to import from workflow
 * code: no I/O, nothing from Node.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';

export const PURCHASE_STATUSES = [
  'RECEIVED',
  'PROCESSING',
  'APPROVED',
  'DECLINED',
  'REJECTED',
  'DUPLICATE',
  'FAILED',
  'CANCELED',
] as const;
export type PurchaseStatus = (typeof PURCHASE_STATUSES)[number];

export const searchAttributes = {
  purchaseId: defineSearchAttributeKey('PurchaseId', SearchAttributeType.KEYWORD),
  merchantId: defineSearchAttributeKey('MerchantId', SearchAttributeType.KEYWORD),
  customerId: defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('PurchaseStatus', SearchAttributeType.KEYWORD),
  amountMinor: defineSearchAttributeKey('AmountMinor', SearchAttributeType.INT),
};

/** The search attributes a purchase workflow starts with; the workflow keeps status current. */
export function initialSearchAttributes(input: PurchaseInput) {
  return [
    { key: searchAttributes.purchaseId, value: input.purchaseId },
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
}

export interface PurchaseResult {
  status: PurchaseStatus;
  reason?: string;
  chargeId?: string;
}

/** Failure types of the charge activity; declines are final, the rest are retried. */
export const DECLINE_TYPES = ['CardDeclined', 'InsufficientFunds', 'InvalidToken'] as const;
export type DeclineType = (typeof DECLINE_TYPES)[number];
export const RETRYABLE_PAYMENT_TYPES = ['ProviderUnavailable', 'ProviderTimeout'] as const;

export const retrySignal = defineSignal('retry');
export const cancelSignal = defineSignal<[{ reason?: string }?]>('cancel');
export const statusQuery = defineQuery<PurchaseStatus>('status');

export function workflowIdFor(merchantId: string, idempotencyKey: string): string {
  return `purchase:${merchantId}:${idempotencyKey}`;
}
