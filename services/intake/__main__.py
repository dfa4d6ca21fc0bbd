"""`python -m services.intake`: the HTTP front door for applications."""
from shared.runtime import run
from services.intake.bootstrap import build

run(build)
