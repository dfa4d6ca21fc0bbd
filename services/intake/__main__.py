"""`python -m services.intake`: the HTTP front door for applications."""
from services.intake.bootstrap import build
from shared.runtime import run

run(build)
