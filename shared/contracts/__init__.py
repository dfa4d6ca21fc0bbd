"""The public contract of DESIGN.md §4: application bodies, the CloudEvents envelope,
routing keys and reason codes. Everything another system can see is defined here."""
