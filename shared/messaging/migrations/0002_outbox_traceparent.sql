-- The W3C traceparent of the work that wrote an outbox row, so that the relay publishes it
-- inside the same trace (shared/observability/tracing.py); null for rows written untraced.
ALTER TABLE {schema}.outbox ADD COLUMN traceparent text;
