-- Revocations at Arcserve (issue 24), as the license issuer announces them
-- (`fulfilment.revocation_requested`): an operator revokes the keys and, when the contract ends,
-- cancels the order ID at Arcserve, then confirms here. A request announced again counts up.
CREATE TABLE backoffice.revocations (
    tenant_id         text NOT NULL,
    application_id    uuid NOT NULL,             -- the cancellation's
    contract_id       uuid NOT NULL,
    licenses          jsonb NOT NULL,            -- [{"license_id", "key_ends_with"}], never a whole key
    arcserve_order_id text,                      -- to cancel too
    requested_at      timestamptz NOT NULL,
    announced         integer NOT NULL,          -- the highest announcement received
    state             text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'confirmed')),
    received_at       timestamptz NOT NULL,
    confirmed_at      timestamptz,
    confirmed_by      text,                      -- the operator's id
    PRIMARY KEY (tenant_id, application_id)
);
-- The list: oldest request first, then tenant and application (the cursor's order).
CREATE INDEX revocations_by_request ON backoffice.revocations (requested_at, tenant_id, application_id);
CREATE INDEX revocations_by_application ON backoffice.revocations (application_id);
