/**
 * Group commit: callers submit one item each and get its own result, while the items waiting
 * together are written by one `run` (one transaction, a few statements for the lot). A batch starts
 * as soon as a slot is free (at most `concurrency` run at once), with everything queued by then (up
 * to `maxBatch`): a lone item waits for nobody, and under load the batches grow by themselves,
 * so the round trips per item fall as the rate rises.
 *
 * `run` answers one result per item, an Error for an item refused on its own. When the whole batch
 * fails with an error that is not an outage (a constraint one item broke, a bug), its items are run
 * again one at a time, so the culprit fails alone and the others go through; an outage fails them all.
 *
 * Hand-written (about 40 lines): the batching libraries on npm (dataloader, p-batch) batch per tick
 * or per timer, not "whatever queued while the previous batch ran", and none retries a failed batch
 * item by item.
 */
export interface GroupCommitOptions {
  maxBatch: number;
  concurrency: number;
  /** An outage: the batch's items all fail instead of being retried one by one. */
  isOutage: (err: unknown) => boolean;
}

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<I, O> {
  private readonly queue: Waiting<I, O>[] = [];
  private running = 0;
  private scheduled = false;

  constructor(
    private readonly run: (items: I[]) => Promise<(O | Error)[]>,
    private readonly opts: GroupCommitOptions,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      // The requests parsed in the same turn of the event loop join one batch.
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.running < this.opts.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      this.running++;
      void this.runBatch(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async runBatch(batch: Waiting<I, O>[]): Promise<void> {
    let results: (O | Error)[];
    try {
      results = await this.run(batch.map((w) => w.item));
    } catch (err) {
      if (batch.length === 1 || this.opts.isOutage(err)) {
        for (const w of batch) w.reject(err);
        return;
      }
      for (const w of batch) await this.runBatch([w]);
      return;
    }
    batch.forEach((w, i) => (results[i] instanceof Error ? w.reject(results[i]) : w.resolve(results[i] as O)));
  }
}
