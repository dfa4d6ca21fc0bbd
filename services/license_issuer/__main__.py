"""`python -m services.license_issuer`: issues and revokes license keys."""
from shared.runtime import run
from services.license_issuer.bootstrap import build

run(build)
