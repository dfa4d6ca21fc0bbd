"""`python -m services.intake`: the HTTP API that takes applications."""
from services.intake.bootstrap import build
from services.intake.boundary import BOUNDARY
from services.intake.config import IntakeSettings
from shared.runtime import run

run(build, BOUNDARY, IntakeSettings)
