-- Intake: what each Idempotency-Key was first used for (docs/architecture.md, "Public contract"). The
-- application id is derived from the tenant and the key with a server secret, so it stands
-- for the pair; the body's digest tells a retry (the same body: the same application) from
-- a reuse (another body: 409 idempotency_key_reused).
CREATE TABLE intake.idempotency_keys (
    tenant_id       text NOT NULL,
    application_id  uuid NOT NULL,
    body_sha256     bytea NOT NULL,     -- of the application as validated, in canonical JSON
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, application_id)
);
