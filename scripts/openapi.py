"""The OpenAPI document of the tenants' one origin (the portal's): intake's and status's, as the
running services generate them, merged (shared/http/openapi.py). `make contracts` writes it
to docs/openapi.json; a test fails while the committed copy and the code differ.

    .venv/bin/python scripts/openapi.py > docs/openapi.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.intake.bootstrap import build as build_intake  # noqa: E402
from services.intake.config import IntakeSettings  # noqa: E402
from services.status.bootstrap import build as build_status  # noqa: E402
from services.status.config import StatusSettings  # noqa: E402
from shared.http import openapi  # noqa: E402
from shared.sealing import Keyring  # noqa: E402


def document() -> dict[str, Any]:
    # URLs and secrets only to build the apps: nothing starts, nothing connects.
    given: dict[str, Any] = {"amqp_url": "amqp://document-only@127.0.0.1/", "database_url": "postgresql://document-only@127.0.0.1/",
             "api_key_pepper": "document-only" * 2}
    intake = build_intake(IntakeSettings(**given, id_secret="document-only" * 2))
    status = build_status(StatusSettings(**given, license_key_keyring=Keyring.new_key_text()))
    return openapi.merge(service.app.openapi() for service in (intake, status))


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
