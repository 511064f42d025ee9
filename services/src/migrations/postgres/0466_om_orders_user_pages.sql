-- order-management: GET /api/orders answers a user's orders in pages, newest first, ordered by
-- (created_at, order_id) (the orders of one group-committed batch share their transaction's now()),
-- optionally of one status. These indexes serve that order and the page's bound (a row comparison
-- on both columns) with and without the status, so a page reads its rows and not the user's whole
-- history (a status filter read every order of the user to find the few of that status).
-- om_orders_user_created_id holds om_orders_user_created's columns first (the pre-trade check's
-- count of the user's orders in the rate window reads it the same way), so that index goes.
CREATE INDEX IF NOT EXISTS om_orders_user_created_id ON om_orders (user_id, created_at DESC, order_id DESC);
CREATE INDEX IF NOT EXISTS om_orders_user_status_created_id ON om_orders (user_id, status, created_at DESC, order_id DESC);
DROP INDEX IF EXISTS om_orders_user_created;
