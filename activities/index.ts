export { createPurchaseActivities } from './purchases';
export { createPaymentActivities } from './payments';
export type { PaymentFailureDetails } from './payments';
