from services.portal.bootstrap import build
from services.portal.config import PortalSettings
from shared.runtime import run_process

run_process(lambda: build(PortalSettings.from_env()))
