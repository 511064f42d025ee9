-- compliance-monitor's positions (signed filled quantity per user and symbol) for the POSITION_LIMIT
-- rule. They were an in-memory sum rebuilt on start from the last COMPLIANCE_REPLAY_WINDOW_MS (1 h)
-- of the audit trail, so a fill older than that was forgotten by a restart (buy 900, restart an hour
-- later, buy 200: position 200 against a real 1,100), and moved again when a rolled-back batch was
-- delivered again.
--
-- A statement trigger on cm_audit maintains them, like om_positions (0197): the fill's audit row and
-- its position move are one statement of the transaction that also stores the fill's alerts, and
-- every writer of the audit trail (a monitor still running the previous release during a deploy
-- included) keeps them right. cm_position_fills records each fill id once, so a fill moves the
-- position once even when it reaches the audit trail under a second event id. The backfill runs
-- after a lock that blocks audit inserts until this migration commits, so no fill is counted twice
-- or missed.

CREATE TABLE IF NOT EXISTS cm_position_fills (
  fill_id    text PRIMARY KEY,
  event_id   text NOT NULL,
  user_id    text NOT NULL,
  symbol     text NOT NULL,
  quantity   numeric NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS cm_positions (
  user_id    text NOT NULL,
  symbol     text NOT NULL,
  quantity   numeric NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, symbol)
);

LOCK TABLE cm_audit IN SHARE ROW EXCLUSIVE MODE;

-- A fill's quantity signed by its side (a sell reduces the position): the trigger and the backfill.
CREATE OR REPLACE FUNCTION cm_signed_quantity(fill jsonb) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN fill->>'side' = 'sell' THEN -((fill->>'quantity')::numeric) ELSE (fill->>'quantity')::numeric END
$$;

-- Fills of `new_audit` not recorded yet (first event per fill id wins), added to the positions.
CREATE OR REPLACE FUNCTION cm_positions_add_fills() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH added AS (
    INSERT INTO cm_position_fills (fill_id, event_id, user_id, symbol, quantity)
    SELECT DISTINCT ON (a.payload->'fill'->>'fillId') a.payload->'fill'->>'fillId', a.event_id, a.user_id, a.symbol,
           cm_signed_quantity(a.payload->'fill')
      FROM new_audit a
     WHERE a.kind = 'fill' AND a.payload->>'source' = 'fill'
     ORDER BY a.payload->'fill'->>'fillId', a.id
    ON CONFLICT (fill_id) DO NOTHING
    RETURNING user_id, symbol, quantity
  )
  INSERT INTO cm_positions (user_id, symbol, quantity)
  SELECT user_id, symbol, sum(quantity) FROM added GROUP BY user_id, symbol
  ON CONFLICT (user_id, symbol) DO UPDATE SET quantity = cm_positions.quantity + excluded.quantity, updated_at = now();
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS cm_audit_positions ON cm_audit;
CREATE TRIGGER cm_audit_positions AFTER INSERT ON cm_audit
  REFERENCING NEW TABLE AS new_audit FOR EACH STATEMENT EXECUTE FUNCTION cm_positions_add_fills();

-- Backfill: every fill the audit trail holds (it is append-only and complete since the first event).
INSERT INTO cm_position_fills (fill_id, event_id, user_id, symbol, quantity)
SELECT DISTINCT ON (a.payload->'fill'->>'fillId') a.payload->'fill'->>'fillId', a.event_id, a.user_id, a.symbol,
       cm_signed_quantity(a.payload->'fill')
  FROM cm_audit a
 WHERE a.kind = 'fill' AND a.payload->>'source' = 'fill'
 ORDER BY a.payload->'fill'->>'fillId', a.id
ON CONFLICT (fill_id) DO NOTHING;

INSERT INTO cm_positions (user_id, symbol, quantity)
SELECT user_id, symbol, sum(quantity) FROM cm_position_fills GROUP BY user_id, symbol
ON CONFLICT (user_id, symbol) DO UPDATE SET quantity = excluded.quantity, updated_at = now();
