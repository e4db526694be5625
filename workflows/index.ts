export { purchase } from './purchase';
// Shape 2, for runs started before shape 3; new purchases start as `purchase`.
export { purchaseWorkflow } from './purchase-v2';
export { refund } from './refund';
