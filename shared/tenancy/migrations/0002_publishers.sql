-- Who may publish submissions to `arcserve.applications`, and for which tenants
-- (docs/architecture.md, "Security": direct publishers). Names are RabbitMQ users: the
-- broker checks a message's `user_id` against its connection, so the name is proven.
--   edge      acts for every tenant; it authenticates tenants itself (intake). Its `time`
--             is when the system received the application (R12).
--   relay     passes on a submission someone else published (the gate's own retries, the
--             operator's dead-letter replays); it acts as the publisher its message names,
--             else as itself.
--   publisher acts for the tenants listed below (another system).
CREATE TABLE tenancy.publishers (
    broker_user text PRIMARY KEY,
    role        text NOT NULL CHECK (role IN ('edge', 'relay', 'publisher')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenancy.publisher_tenants (
    broker_user text NOT NULL REFERENCES tenancy.publishers ON DELETE CASCADE,
    tenant_id   text NOT NULL REFERENCES tenancy.tenants,
    allowed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (broker_user, tenant_id)
);
