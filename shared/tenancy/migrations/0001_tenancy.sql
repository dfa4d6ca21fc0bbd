-- Tenancy: who may call the API (docs/architecture.md, "Security"). Read by the HTTP services and by the status
-- service (the tenant of an AMQP submission must exist); written by the provisioning step.
CREATE TABLE tenancy.tenants (
    tenant_id   text PRIMARY KEY,                    -- the tenant's name, as in CloudEvents `tenantid`
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenancy.api_keys (
    key_hash    bytea PRIMARY KEY,                   -- sha256 of the bearer key; the key itself is never stored
    tenant_id   text NOT NULL REFERENCES tenancy.tenants,
    created_at  timestamptz NOT NULL DEFAULT now()
);
