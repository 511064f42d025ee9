/**
 * Failures of a task repeated on a timer, counted in a row so an outage is logged once, not once a try: a pass
 * every second over a PostgreSQL that is down would otherwise warn every second for as long as it lasts.
 * `failed()` is true for the first failure of a streak (log it); `worked()` ends the streak and answers how many
 * tries failed in it (0: none; log the recovery with the count).
 */
export class FailureStreak {
  private inRow = 0;

  failed(): boolean {
    return this.inRow++ === 0;
  }

  worked(): number {
    const failed = this.inRow;
    this.inRow = 0;
    return failed;
  }
}
