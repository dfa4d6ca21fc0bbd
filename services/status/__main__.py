"""`python -m services.status`: the contract gate, the issuance join and the read API."""
from services.status.bootstrap import build
from services.status.boundary import BOUNDARY
from shared.runtime import run

run(build, BOUNDARY)
