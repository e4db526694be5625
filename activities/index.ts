export { createPurchaseActivities } from './purchases';
export { createPaymentActivities } from './payments';
export { createRefundActivities } from './refunds';
export type { MovementResult, PaymentFailureDetails } from './payments';
