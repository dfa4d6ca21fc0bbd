-- The tenant's application list, newest first (GET /v1/applications), and the applications
-- of one contract in the same order (the summaries' application ids).
CREATE INDEX applications_by_tenant ON status.applications (tenant_id, submitted_at DESC, application_id DESC);
CREATE INDEX applications_by_tenant_contract
    ON status.applications (tenant_id, contract_id, submitted_at DESC, application_id DESC);
