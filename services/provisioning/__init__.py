"""The one-shot provisioning step (docs/architecture.md, "Security"): everything the services need, made once,
with the administrator's credentials, before any service starts. See __main__.py."""
