/**
 * The listings' pages (`?limit=&before=`, answering `nextBefore`): a listing reads one row beyond the
 * page (`limit + 1`), which only tells whether another page follows, so a full last page announces
 * no empty one after it. The `before` cursor is the id of the caller's last row of the previous page:
 * its sort key is read in the page's own statement (cursorPage), so the page and the cursor are read
 * from one snapshot in one round trip, and a cursor that is not one of the caller's rows (unknown,
 * deleted, another user's) is a 400 naming `before` (unknownCursor), never a page of anyone's rows.
 */
import type { QueryResultRow } from "pg";
import type { Queryable } from "./datastores/postgres";
import { HttpError } from "./errors";

/** The first `limit` of `rows` (read with `limit + 1`), and the cursor of the last of them (`cursorOf`) when another page follows, else null. */
export function pageOf<T>(rows: readonly T[], limit: number, cursorOf: (last: T) => string): { page: T[]; nextBefore: string | null } {
  const page = rows.slice(0, limit);
  return { page, nextBefore: rows.length > limit ? cursorOf(page[page.length - 1]) : null };
}

/**
 * A page and its cursor in one statement. `cursor` selects the cursor row's sort key, filtered to the
 * caller's rows (no row when none is given, unknown or another's); `page` selects the page's rows
 * (no ORDER BY, no LIMIT), reading that key as `(SELECT * FROM before_row)` in a row-value comparison
 * (`(created_at, id) < (SELECT * FROM before_row)`); `order` is the page's order, ORDER BY terms over
 * the page's output columns (a total order: its last terms a unique key), and `limit` its size. Both
 * take `values` (the limit is bound after them); `given` says whether a cursor was. Answers the page's
 * rows in that order, or undefined when a cursor was given and no row of the caller's has it.
 * The order is applied twice: within the page, where its index serves it with the limit, and to the
 * statement's answer, so the rows come back in it whatever plan joins the page to the cursor check
 * (it held only because that join on one row was a nested loop).
 */
export async function cursorPage<R extends QueryResultRow>(
  db: Queryable,
  q: { cursor: string; page: string; order: string; limit: number; values: unknown[]; given: boolean },
): Promise<R[] | undefined> {
  const { rows } = await db.query<R & { cursor_known?: boolean; page_row?: boolean | null }>(
    `WITH before_row AS MATERIALIZED (${q.cursor})
     SELECT k.cursor_known, page.* FROM (SELECT ${q.given ? "EXISTS (SELECT 1 FROM before_row)" : "true"} AS cursor_known) AS k
       LEFT JOIN LATERAL (SELECT true AS page_row, p.* FROM (${q.page}) AS p ORDER BY ${q.order} LIMIT $${q.values.length + 1}) AS page ON k.cursor_known
     ORDER BY ${q.order}`,
    [...q.values, q.limit],
  );
  if (!rows[0]?.cursor_known) return undefined;
  const page = rows.filter((r) => r.page_row);
  for (const r of page) {
    delete r.cursor_known;
    delete r.page_row;
  }
  return page;
}

/** The 400 of a `before` that is not one of the caller's rows (`what`: "orders", "fills", ...). */
export const unknownCursor = (what: string) => new HttpError(400, "VALIDATION_ERROR", `before must be the id of one of your ${what} (a page's nextBefore)`, "before");
