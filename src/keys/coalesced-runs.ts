/**
 * One run of a reload at a time: a request that arrives while one runs folds into ONE more pass
 * after it, so the last change is always read and two reads of the same source never overlap.
 * Shared by the key sources (base-key-source.ts) and the served TLS certificate.
 */
export class CoalescedRuns {
  private running: Promise<void> | undefined;
  private requested = false;

  /** `pass` does one reload; no further pass starts once `stopped()` says so. */
  constructor(
    private readonly pass: () => Promise<void>,
    private readonly stopped: () => boolean,
  ) {}

  /** Resolves when a pass that started after this request has finished. */
  request(): Promise<void> {
    if (this.running) {
      this.requested = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.requested = false;
        await this.pass();
      } while (this.requested && !this.stopped());
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** The runs in progress, if any, finished (stop() waits for this). */
  async settled(): Promise<void> {
    await this.running;
  }
}
