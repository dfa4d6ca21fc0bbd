-- The status service: the single owner of contract state (docs/architecture.md).
CREATE TABLE status.contracts (
    contract_id               uuid PRIMARY KEY,
    tenant_id                 text NOT NULL,
    product_code              text NOT NULL,
    status                    text NOT NULL CHECK (status IN ('preparing', 'active', 'cancelled')),
    contact_email             text NOT NULL,
    contact_company_name      text NOT NULL,
    arcserve_order_id         text,               -- null until order_id.issued
    order_id_status           text CHECK (order_id_status IN ('active', 'cancelled')),
    order_id_cancel_confirmed_at timestamptz,     -- order_id.cancelled arrived (R9)
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL
);
-- R2 backstop: at most one live contract per tenant and product, even under races.
CREATE UNIQUE INDEX contracts_one_live_per_product
    ON status.contracts (tenant_id, product_code) WHERE status <> 'cancelled';
CREATE INDEX contracts_by_tenant ON status.contracts (tenant_id, created_at DESC, contract_id DESC);

CREATE TABLE status.licenses (
    license_id        uuid PRIMARY KEY,
    contract_id       uuid NOT NULL REFERENCES status.contracts,
    position          int NOT NULL,               -- order of issue within the contract
    application_id    uuid NOT NULL,              -- the application that created it
    parent_license_id uuid,                       -- VM keys of a VM-count increase (R7)
    usage             text NOT NULL,
    license_type      text NOT NULL,
    vm_count          int,
    billable          boolean NOT NULL,
    status            text NOT NULL CHECK (status IN ('preparing', 'active', 'cancelled')),
    license_key       text,                       -- null until license.issued
    issued_at         timestamptz,
    charge_start_at   timestamptz,
    charge_end_at     timestamptz,
    revoked_at        timestamptz                 -- license.revoked arrived
);
CREATE INDEX licenses_by_contract ON status.licenses (contract_id, position);

CREATE TABLE status.applications (
    application_id         uuid PRIMARY KEY,       -- chosen by the submitter; a resubmission is a no-op
    tenant_id              text NOT NULL,
    kind                   text NOT NULL,
    contract_id            uuid,                   -- as named by the application, or created by it
    status                 text NOT NULL CHECK (status IN ('processing', 'completed', 'rejected')),
    reason_code            text,
    reason_message         text,
    body                   jsonb,                  -- the domain command it asked for, for the record; null if it failed its schema
    license_ids            uuid[] NOT NULL DEFAULT '{}', -- keys it creates or cancels
    cancels_contract       boolean NOT NULL DEFAULT false,
    submitted_at           timestamptz NOT NULL,
    expected_completion_at timestamptz,
    completed_at           timestamptz            -- when it ended (completed or rejected)
);
CREATE INDEX applications_by_contract ON status.applications (contract_id, submitted_at);
CREATE INDEX applications_open ON status.applications (contract_id) WHERE status = 'processing';
