"""`python -m services.status`: the contract gate, the issuance join and the read API."""
from shared.runtime import run
from services.status.bootstrap import build

run(build)
