/*
 * Workflows bundled by the benchmark's own worker (workflowsPath). The purchase workflow
 * is the real one, re-exported so one bundle serves both measurements.
 */
export { purchase } from '../workflows';

/** A workflow with no activities: what one start and one completion cost the engine. */
export function noopWorkflow(): Promise<void> {
  return Promise.resolve();
}
