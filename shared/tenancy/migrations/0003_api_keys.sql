-- API keys (docs/architecture.md, "Security"): each has a visible id (the `arc_<id>_` prefix of the key,
-- shown in listings, audit records and applications) and is stored as HMAC-SHA256 under a
-- server pepper (ARCSERVE_API_KEY_PEPPER), never in clear; revoked, it stops working on
-- every replica within a second (NOTIFY arcserve_api_key_revoked). The unsalted hashes of
-- before are dropped: the provisioning step seeds ARCSERVE_API_KEYS again, and no other
-- key existed.
DROP TABLE tenancy.api_keys;

CREATE TABLE tenancy.api_keys (
    key_id      text PRIMARY KEY,
    key_hmac    bytea NOT NULL UNIQUE,
    tenant_id   text NOT NULL REFERENCES tenancy.tenants,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_by_tenant ON tenancy.api_keys (tenant_id, created_at);
