"""`python -m services.license_issuer`: issues and revokes license keys."""
from services.license_issuer.bootstrap import build
from shared.runtime import run

run(build)
