from services.portal.bootstrap import NAME, build
from services.portal.config import PortalSettings
from shared.runtime import run_process

settings = PortalSettings.from_env()
run_process(NAME, lambda: build(settings), settings)
