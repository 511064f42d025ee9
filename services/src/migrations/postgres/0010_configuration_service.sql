-- configuration-service: versioned key/value configuration per namespace with an audit trail.
-- Current values (one row per live key; deleted keys are removed here, their history stays).
CREATE TABLE IF NOT EXISTS config_entries (
  namespace   text NOT NULL CHECK (namespace ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  key         text NOT NULL CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
  value       jsonb NOT NULL,
  version     integer NOT NULL CHECK (version > 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text NOT NULL,
  PRIMARY KEY (namespace, key)
);

-- Every change is a new version of the key (set, delete, rollback) with who/when/old/new/request id.
-- Versions keep counting after a delete, so a re-created key never reuses a version number.
CREATE TABLE IF NOT EXISTS config_versions (
  id          bigserial PRIMARY KEY,
  namespace   text NOT NULL,
  key         text NOT NULL,
  version     integer NOT NULL,
  operation   text NOT NULL CHECK (operation IN ('set', 'delete', 'rollback')),
  old_value   jsonb,
  new_value   jsonb,
  changed_by  text NOT NULL,
  changed_at  timestamptz NOT NULL DEFAULT now(),
  request_id  text,
  rollback_of integer,
  UNIQUE (namespace, key, version)
);
CREATE INDEX IF NOT EXISTS config_versions_ns_time ON config_versions (namespace, changed_at DESC);
