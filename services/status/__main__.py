"""`python -m services.status`: the contract gate, the issuance join and the read API."""
from services.status.bootstrap import build
from services.status.boundary import BOUNDARY
from services.status.config import StatusSettings
from shared.runtime import run

run(build, BOUNDARY, StatusSettings)
