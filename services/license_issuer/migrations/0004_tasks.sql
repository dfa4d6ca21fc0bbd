-- Fulfilment from the back office or another system (issue 24): a request is the whole task of
-- one application, as they see it: its keys and, for a new contract, its order ID; it ends
-- fulfilled or refused by Arcserve, whichever result comes first.
ALTER TABLE license_issuer.requests
    ADD COLUMN needs_order_id boolean NOT NULL DEFAULT false,
    ADD COLUMN submitted_at timestamptz,         -- the application's, as the tenant sees it
    ADD COLUMN refused_at timestamptz,
    ADD COLUMN reason text;                      -- Arcserve's refusal, for the tenant
UPDATE license_issuer.requests SET needs_order_id = (kind = 'new'), submitted_at = requested_at;
ALTER TABLE license_issuer.requests ALTER COLUMN submitted_at SET NOT NULL;

-- A key Arcserve delivered once is never taken for another license: its fingerprint under the
-- keyring (an HMAC; the key itself is sealed) is unique. Keys stored before have none.
ALTER TABLE license_issuer.keys ADD COLUMN fingerprint bytea UNIQUE;
