-- The inbox and outbox of one service, in that service's own schema ({schema}); see
-- shared/messaging/inbox.py, outbox.py and unit_of_work.py (docs/architecture.md, "Reliability").
CREATE TABLE {schema}.inbox (
    message_id    text NOT NULL,                     -- CloudEvents `id` of the handled message
    consumer      text NOT NULL,                     -- the queue whose handler consumed it
    processed_at  timestamptz NOT NULL DEFAULT now(),-- for pruning after the retention period
    PRIMARY KEY (message_id, consumer)
);
CREATE INDEX inbox_processed_at ON {schema}.inbox (processed_at);

CREATE TABLE {schema}.outbox (
    id           bigserial PRIMARY KEY,              -- relay order
    exchange     text NOT NULL,                      -- full exchange name, topology prefix included
    routing_key  text NOT NULL,
    message_id   text NOT NULL,                      -- CloudEvents `id`, also the AMQP message-id
    body         text NOT NULL,                      -- the CloudEvent, exactly as it is sent
    created_at   timestamptz NOT NULL DEFAULT now()
);
