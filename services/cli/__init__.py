"""`arcserve`: the tenants' command line (docs/architecture.md, "Portal and command line"). It speaks only the
public HTTP API, through one base URL (the portal's origin serves the whole `/v1`)."""
