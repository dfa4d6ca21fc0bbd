-- An application id is the submitter's choice: two tenants may choose the same one, and
-- neither may suppress the other's application with it (docs/architecture.md, "Security").
ALTER TABLE status.applications DROP CONSTRAINT applications_pkey;
ALTER TABLE status.applications ADD PRIMARY KEY (tenant_id, application_id);
