"""`python -m services.license_issuer`: keys issued and revoked through the issuance backend."""
from services.license_issuer.bootstrap import build
from services.license_issuer.boundary import BOUNDARY
from services.license_issuer.config import LicenseIssuerSettings
from shared.runtime import run

run(build, BOUNDARY, LicenseIssuerSettings)
