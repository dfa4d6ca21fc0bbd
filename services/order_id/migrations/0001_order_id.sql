-- The order-ID service: one Arcserve order ID per contract.
CREATE TABLE order_id.orders (
    contract_id     uuid PRIMARY KEY,
    application_id  uuid NOT NULL,               -- the `new` that asked for it
    value           text NOT NULL UNIQUE,
    issued_at       timestamptz NOT NULL,
    cancelled_at    timestamptz
);
