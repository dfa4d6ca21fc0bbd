-- The provider's operators of the back-office console (docs/architecture.md, "Fulfilment"):
-- each has a visible id (the `ops_<id>_` prefix of the key, shown in listings and audit records)
-- and a role, and is stored as HMAC-SHA256 under the server pepper, never in clear, as tenants'
-- API keys are; revoked, its key stops working at once. No tenant key is an operator key.
CREATE TABLE tenancy.operators (
    operator_id text PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('fulfiller', 'viewer')),
    key_hmac    bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
