-- Fulfilment (issue 24): an accepted new contract's order ID is a request that waits, for days if
-- need be, until its result arrives; no delivery, connection or task waits with it. One per contract.
CREATE TABLE order_id.requests (
    contract_id     uuid PRIMARY KEY,
    application_id  uuid NOT NULL,               -- the `new` that asked for it
    tenant_id       text NOT NULL,
    requested_at    timestamptz NOT NULL,
    due_at          timestamptz,                 -- R12's expected completion
    simulate_at     timestamptz,                 -- when the simulator answers it (simulator mode)
    traceparent     text,                        -- of the acceptance: its result goes on in that trace
    fulfilled_at    timestamptz
);
CREATE INDEX requests_to_simulate ON order_id.requests (simulate_at) WHERE fulfilled_at IS NULL;
