// Dynamic batching for FaceModel: concurrent embed() calls share one forward pass.

/**
 * Dynamic batching of S x S crops, as inference servers do: the crops of calls
 * that arrive while a batch runs go into the next batch (up to maxBatch); with
 * nothing running a call starts at once, so a lone request waits for nobody.
 * Concurrent single-face calls then cost what one batched call costs.
 */
export class CropBatcher {
  private queue: { data: Uint8Array; resolve(v: Float32Array): void; reject(e: unknown): void }[] = [];
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  maxBatch = 32;
  /** With nothing running, how long a call waits for others to share its batch (0: it starts at once). */
  maxWaitMs = 0;
  constructor(
    private readonly runBatch: (px: Uint8Array, n: number) => Promise<Float32Array[]>,
    private readonly bytesPerCrop: number,
  ) {}
  embed(crops: Uint8Array[]): Promise<Float32Array[]> {
    const out = crops.map((data) => new Promise<Float32Array>((resolve, reject) => this.queue.push({ data, resolve, reject })));
    this.pump();
    return Promise.all(out);
  }
  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    if (this.maxWaitMs > 0 && this.queue.length < this.maxBatch) {
      // The batch closes when full or when the first call has waited maxWaitMs.
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.start();
      }, this.maxWaitMs);
      return;
    }
    this.start();
  }
  private start(): void {
    if (this.running || this.queue.length === 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.running = true;
    const batch = this.queue.splice(0, this.maxBatch);
    const px = new Uint8Array(batch.length * this.bytesPerCrop);
    batch.forEach((b, k) => px.set(b.data, k * this.bytesPerCrop));
    this.runBatch(px, batch.length)
      .then(
        (rows) => batch.forEach((b, k) => b.resolve(rows[k])),
        (e) => batch.forEach((b) => b.reject(e)),
      )
      .finally(() => {
        this.running = false;
        this.pump();
      });
  }
}
