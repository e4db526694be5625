export { purchaseWorkflow } from './purchase';
