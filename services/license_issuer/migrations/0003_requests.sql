-- Fulfilment (issue 24): the keys an accepted application needs are a request that waits, for days
-- if need be, until its result arrives; no delivery, connection or task waits with it. One per
-- application, all its licenses together (a task of the back office is one application). Application
-- ids are the tenant's own (a direct publisher chooses them): one is known by its tenant and id.
CREATE TABLE license_issuer.requests (
    tenant_id       text NOT NULL,
    application_id  uuid NOT NULL,
    contract_id     uuid NOT NULL,
    kind            text NOT NULL,
    licenses        jsonb NOT NULL,              -- the licenses it needs keys for, as accepted (no key)
    requested_at    timestamptz NOT NULL,
    due_at          timestamptz,                 -- R12's expected completion
    simulate_at     timestamptz,                 -- when the simulator answers it (simulator mode)
    traceparent     text,                        -- of the acceptance: its result goes on in that trace
    fulfilled_at    timestamptz,
    PRIMARY KEY (tenant_id, application_id)
);
CREATE INDEX requests_to_simulate ON license_issuer.requests (simulate_at) WHERE fulfilled_at IS NULL;
