-- Who may publish fulfilment results to `arcserve.fulfilment` (docs/architecture.md,
-- "Fulfilment"): another system of the provider, allowed by an operator
-- (`python -m services.tools.publishers allow-fulfilment USER`), or the deployment's own
-- back-office console (made so by the provisioning step). Names are RabbitMQ users: the broker
-- checks a message's `user_id` against its connection, so the name is proven.
CREATE TABLE tenancy.fulfillers (
    broker_user text PRIMARY KEY,
    own         boolean NOT NULL DEFAULT false,  -- the deployment's console: the provisioning step's to keep
    allowed_at  timestamptz NOT NULL DEFAULT now()
);
