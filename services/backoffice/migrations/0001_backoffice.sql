-- The back-office console (docs/architecture.md, "Fulfilment"): the fulfilment tasks as the
-- license issuer announced them (`fulfilment.requested`), and what the operators did with them.
CREATE TABLE backoffice.tasks (
    tenant_id       text NOT NULL,
    application_id  uuid NOT NULL,
    contract_id     uuid NOT NULL,
    kind            text NOT NULL,
    submitted_at    timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,        -- R12's expected completion
    needs           jsonb NOT NULL,              -- {"arcserve_order_id": bool, "licenses": [...]}, no key
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'fulfilled', 'rejected')),
    received_at     timestamptz NOT NULL,
    closed_at       timestamptz,
    closed_by       text,                        -- the operator's id
    reason          text,                        -- a rejection's, for the tenant
    PRIMARY KEY (tenant_id, application_id)
);
-- The list: by due time, then tenant and application (the cursor's order).
CREATE INDEX tasks_by_due ON backoffice.tasks (due_at, tenant_id, application_id);
CREATE INDEX tasks_by_application ON backoffice.tasks (application_id);

-- Keys typed in here, by fingerprint (an HMAC under the keyring; the key itself is never
-- stored here): one used before is refused for another license.
CREATE TABLE backoffice.used_keys (
    fingerprint     bytea PRIMARY KEY,
    tenant_id       text NOT NULL,
    application_id  uuid NOT NULL,
    used_at         timestamptz NOT NULL
);
