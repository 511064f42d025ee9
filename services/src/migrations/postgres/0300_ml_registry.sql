-- Model registry of ml-predictor (issue 11): every trained model with its training window, feature
-- names, walk-forward metrics, the ONNX artifact (bytea: readable from Docker and Kubernetes alike,
-- no shared volume) and its SHA-256. At most one model is `promoted` (the one served); promote and
-- rollback are recorded in ml_model_events.
CREATE TABLE IF NOT EXISTS ml_models (
  version         text PRIMARY KEY,
  status          text NOT NULL CHECK (status IN ('candidate', 'promoted', 'retired')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  trained_at      timestamptz NOT NULL,
  promoted_at     timestamptz,
  horizon_bars    integer NOT NULL CHECK (horizon_bars > 0),
  interval_ms     bigint NOT NULL CHECK (interval_ms > 0),
  symbols         text[] NOT NULL,
  training_from   timestamptz NOT NULL,
  training_to     timestamptz NOT NULL,
  features        text[] NOT NULL,
  params          jsonb NOT NULL,
  metrics         jsonb NOT NULL,
  has_edge        boolean NOT NULL,
  reference       jsonb NOT NULL,
  artifact        bytea NOT NULL,
  artifact_sha256 text NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
  artifact_bytes  integer NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ml_models_one_promoted ON ml_models ((true)) WHERE status = 'promoted';
CREATE INDEX IF NOT EXISTS ml_models_created ON ml_models (created_at DESC);

CREATE TABLE IF NOT EXISTS ml_model_events (
  id          bigserial PRIMARY KEY,
  version     text NOT NULL REFERENCES ml_models (version),
  action      text NOT NULL CHECK (action IN ('registered', 'promoted', 'rolled_back', 'retired')),
  previous    text,
  actor       text NOT NULL,
  reason      text,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ml_model_events_at ON ml_model_events (at DESC, id DESC);
