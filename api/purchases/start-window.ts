/*
 * Backpressure for the outbox relay (./starter.ts). A relay may run only so many
 * workflows ahead of the purchase workers: a workflow it started counts against its
 * window until the workflow has admitted the purchase (the row left RECEIVED). The
 * window grows by what the workers admit while they keep up, and halves when a start has
 * waited longer than the target for its admission. So a burst waits in the outbox, where
 * it costs nothing, instead of in Temporal's task queues, where every queued workflow
 * slows the ones ahead of it; it drains at the rate the workers take.
 */

export interface WindowOptions {
  /** The floor: even with the workers stalled, this many starts may be out. */
  min: number;
  max: number;
  /** Admission slower than this means the workers are behind. */
  targetMs: number;
  /** A start not admitted after this long is forgotten (its workflow failed or was reset). */
  forgetMs: number;
}

export const DEFAULT_WINDOW: WindowOptions = {
  min: 4,
  max: 512,
  targetMs: 1_000,
  forgetMs: 120_000,
};

export class StartWindow {
  private size: number;
  /** Purchase id → when its workflow was started. */
  private readonly open = new Map<string, number>();
  private lastCut = 0;

  constructor(private readonly options: WindowOptions = DEFAULT_WINDOW) {
    this.size = options.min * 4;
  }

  /** How many more starts may go out now. */
  room(): number {
    return Math.max(0, this.size - this.open.size);
  }

  limit(): number {
    return this.size;
  }

  started(purchaseId: string, at: number): void {
    this.open.set(purchaseId, at);
  }

  /** The started purchases not yet seen admitted, for the relay to look up. */
  waiting(): string[] {
    return [...this.open.keys()];
  }

  /** Takes what a look-up found: `admitted` of `waiting()` have left RECEIVED. */
  observe(admitted: readonly string[], now: number): void {
    for (const id of admitted) this.open.delete(id);
    let oldest = now;
    for (const [id, at] of this.open) {
      if (now - at > this.options.forgetMs) this.open.delete(id);
      else oldest = Math.min(oldest, at);
    }
    const behind = now - oldest > this.options.targetMs;
    if (behind && now - this.lastCut > this.options.targetMs) {
      this.size = Math.max(this.options.min, Math.floor(this.size / 2));
      this.lastCut = now;
    } else if (!behind) {
      this.size = Math.min(this.options.max, this.size + admitted.length);
    }
  }
}
