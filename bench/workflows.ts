/** Bundled by the benchmark's own worker: no activities, what a start and a close cost. */
export function noopWorkflow(): Promise<void> {
  return Promise.resolve();
}
