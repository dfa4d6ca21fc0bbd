-- The license issuer: the keys it obtained, so a redelivery never issues a second key.
CREATE TABLE license_issuer.keys (
    license_id      uuid PRIMARY KEY,
    contract_id     uuid NOT NULL,
    application_id  uuid NOT NULL,
    license_key     text NOT NULL UNIQUE,
    issued_at       timestamptz NOT NULL,
    revoked_at      timestamptz
);
