"""/readyz says whether the broker and the database answer now, not whether a connection
once opened still looks open: a broker that accepts bytes and never replies (out of file
handles, a silent partition) makes every service not ready until it answers again."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tests.support.infra import Servers
from tests.support.proxy import FaultProxy
from tests.support.stack import Stack, eventually

NOTICE_S = 10.0  # the probe's own timeout is 2 s


async def _readiness(stack: Stack) -> dict[str, int]:
    return {name: (await stack.http.get(stack.url(name, "/readyz"))).status_code for name in stack.services}


async def test_a_broker_that_stops_answering_makes_every_service_not_ready(
    infrastructure: Servers, new_stack: Callable[..., Any]
) -> None:
    broker = urlsplit(infrastructure.amqp_url)
    async with FaultProxy(broker.hostname or "127.0.0.1", broker.port or 5672) as proxy:
        stack: Stack = await new_stack(amqp_url=proxy.url_for(infrastructure.amqp_url))
        try:
            await stack.start()
            assert set((await _readiness(stack)).values()) == {200}

            proxy.blackhole(True)  # connections stay up; nothing comes back

            async def none_ready() -> dict[str, int] | None:
                answers = await _readiness(stack)
                return answers if set(answers.values()) == {503} else None

            await eventually(none_ready, "every service to report not ready", timeout=NOTICE_S)
            proxy.blackhole(False)

            async def all_ready() -> dict[str, int] | None:
                answers = await _readiness(stack)
                return answers if set(answers.values()) == {200} else None

            await eventually(all_ready, "every service to be ready again", timeout=NOTICE_S)
        finally:
            proxy.blackhole(False)
            await stack.close()  # while its broker is still reachable through the proxy
