-- License keys are sealed at rest (docs/architecture.md, "Security": AES-256-GCM, shared/sealing.py). No
-- key in clear is carried over: a deployment that holds some starts from a new database.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM license_issuer.keys) THEN
        RAISE EXCEPTION 'license_issuer.keys holds license keys in clear; give the deployment a new database '
                        '(for `make run`: dropdb arcserve)';
    END IF;
END $$;

ALTER TABLE license_issuer.keys DROP CONSTRAINT keys_license_key_key;  -- unique ciphertexts say nothing
ALTER TABLE license_issuer.keys RENAME COLUMN license_key TO sealed_key;
