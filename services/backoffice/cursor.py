"""Where a page of one of the console's lists ended: the list's order is a time (a task's due
time, a revocation's request time), then tenant and application."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True)
class Cursor:
    at: datetime
    tenant_id: str
    application_id: UUID

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.tenant_id, str(self.application_id)])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """ValueError for anything this API did not hand out."""
        try:
            at, tenant_id, application_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            return cls(datetime.fromisoformat(at), str(tenant_id), UUID(application_id))
        except (ValueError, TypeError) as exc:
            raise ValueError("not a cursor this API returned") from exc
