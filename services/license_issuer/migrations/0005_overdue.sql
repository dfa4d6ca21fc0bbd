-- Due times (R12) and overdue (issue 24): an open task past its due time is logged once, when it
-- becomes overdue; this is when.
ALTER TABLE license_issuer.requests ADD COLUMN overdue_at timestamptz;
CREATE INDEX requests_open_by_due ON license_issuer.requests (due_at)
    WHERE fulfilled_at IS NULL AND refused_at IS NULL AND overdue_at IS NULL;
