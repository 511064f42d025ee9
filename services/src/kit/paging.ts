/**
 * The listings' pages (`?limit=&before=`, answering `nextBefore`): a listing reads one row beyond the
 * page (`limit + 1`), which only tells whether another page follows, so a full last page announces
 * no empty one after it.
 */

/** The first `limit` of `rows` (read with `limit + 1`), and the cursor of the last of them (`cursorOf`) when another page follows, else null. */
export function pageOf<T>(rows: readonly T[], limit: number, cursorOf: (last: T) => string): { page: T[]; nextBefore: string | null } {
  const page = rows.slice(0, limit);
  return { page, nextBefore: rows.length > limit ? cursorOf(page[page.length - 1]) : null };
}
