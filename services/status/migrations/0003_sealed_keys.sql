-- License keys are sealed at rest (docs/architecture.md, "Security": AES-256-GCM, shared/sealing.py), as
-- the license issuer sends them. No key in clear is carried over: a deployment that holds
-- some starts from a new database.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM status.licenses WHERE license_key IS NOT NULL) THEN
        RAISE EXCEPTION 'status.licenses holds license keys in clear; give the deployment a new database '
                        '(for `make run`: dropdb arcserve)';
    END IF;
END $$;

ALTER TABLE status.licenses RENAME COLUMN license_key TO sealed_key;
