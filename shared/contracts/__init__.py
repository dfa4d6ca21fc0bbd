"""The public contract of docs/architecture.md, "Public contract": application bodies, the CloudEvents envelope,
routing keys and reason codes. Everything another system can see is defined here."""
