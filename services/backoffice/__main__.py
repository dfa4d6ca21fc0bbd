"""`python -m services.backoffice`: the provider's back-office console, where operators fulfil tasks."""
from services.backoffice.bootstrap import build
from services.backoffice.boundary import BOUNDARY
from services.backoffice.config import BackofficeSettings
from shared.runtime import run

run(build, BOUNDARY, BackofficeSettings)
