-- What operators did (docs/architecture.md, "Security"): every operator command that
-- changes who may do what, or moves dead letters, leaves a record. Written by the operator
-- commands with the administrator's connection; no service reads or writes it.
CREATE TABLE audit.records (
    record_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,      -- who: the operator's login and the database user
    action      text NOT NULL,      -- what: e.g. publishers.allow, api_keys.revoke, dlq.replay
    subject     text NOT NULL,      -- on what: a broker user, a key id, a message id
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb  -- never a secret
);

CREATE INDEX records_at ON audit.records (at DESC);
