-- Who submitted each application (docs/architecture.md, "Security"): the API key id when it came through
-- intake, the broker user of the system that published it otherwise. Unknown for older ones.
ALTER TABLE status.applications
    ADD COLUMN submitted_by_kind text CHECK (submitted_by_kind IN ('api_key', 'publisher')),
    ADD COLUMN submitted_by_id   text;
