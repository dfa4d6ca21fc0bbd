-- Revocation at Arcserve (issue 24): a cancellation is immediate for the tenant (R8, R9: the keys
-- are marked revoked in the same transaction); what Arcserve is to do about it is a request of its
-- own, one per accepted cancellation, kept until it is confirmed. `next_at` is when it is next
-- due: answered by the simulator, or announced (again) on `arcserve.fulfilment`.
CREATE TABLE license_issuer.revocations (
    tenant_id         text        NOT NULL,
    application_id    uuid        NOT NULL,
    contract_id       uuid        NOT NULL,
    license_ids       uuid[]      NOT NULL,  -- the licenses whose keys Arcserve is to revoke
    arcserve_order_id text,                  -- cancelled too: the whole contract ends (R9)
    requested_at      timestamptz NOT NULL,
    next_at           timestamptz NOT NULL,
    announced         integer     NOT NULL DEFAULT 0,  -- how many times it was announced
    confirmed_at      timestamptz,
    traceparent       text,
    PRIMARY KEY (tenant_id, application_id)
);
CREATE INDEX revocations_unconfirmed ON license_issuer.revocations (next_at) WHERE confirmed_at IS NULL;
