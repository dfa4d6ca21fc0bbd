"""Several nodes of one RabbitMQ cluster behind one setting (docs/architecture.md,
"Reliability"): `AMQP_URL` and each service's `<SERVICE>_AMQP_URL` may list them,
comma-separated (`amqp://u:p@rabbit-1:5672/,amqp://u:p@rabbit-2:5672/`); in Kubernetes the
cluster's Service address serves as one.

A service keeps one robust connection (`FailoverConnection`): aio-pika's, which restores its
channels and consumers after a reconnection, but each attempt goes to the next node in turn,
so losing the node it was on costs a reconnection to another one (about a second), not the
wait until that node is back. Operator commands connect once, to the first node that answers.
"""
from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractConnection
from aio_pika.robust_connection import RobustConnection
from yarl import URL

RECONNECT_INTERVAL_S = 1.0  # between attempts; each one tries the next node


def split(url: str) -> list[str]:
    """The nodes of a comma-separated broker URL; ValueError naming what is wrong."""
    nodes = [part.strip() for part in url.split(",") if part.strip()]
    if not nodes:
        raise ValueError("no broker URL given")
    for node in nodes:
        parts = urlsplit(node)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ValueError(f"{_shown(node)} is not an amqp:// or amqps:// URL with a host")
    users = {unquote(urlsplit(node).username or "guest") for node in nodes}
    if len(users) > 1:
        raise ValueError(f"the nodes name different users ({', '.join(sorted(users))}); one connection is one user")
    return nodes


def user_of(url: str) -> str:
    """The broker user a (comma-separated) URL logs in as."""
    return unquote(urlsplit(split(url)[0]).username or "") or "guest"


def _shown(node: str) -> str:
    """A node's URL as it may appear in an error: without its password."""
    parts = urlsplit(node)
    if parts.password is None:
        return node
    return node.replace(f":{parts.password}@", ":******@", 1)


class FailoverConnection(RobustConnection):
    """A robust connection that takes the next node of the cluster at each attempt."""

    def __init__(self, nodes: list[str], **kwargs: Any):
        super().__init__(URL(nodes[0]), **kwargs)
        self._nodes = itertools.cycle([URL(node) for node in nodes])

    # RobustConnection makes every attempt (the first and each reconnection) through this
    # private method, reading `self.url`: choosing the node here covers them all.
    async def _RobustConnection__connect_transport(self) -> None:
        self.url = next(self._nodes)
        await super()._RobustConnection__connect_transport()  # type: ignore[misc]  # private in aio-pika 10.2


async def connect_robust(url: str, *, start: int = 0, **kwargs: Any) -> FailoverConnection:
    """A FailoverConnection over the nodes of `url`, its first attempt at node `start`
    (modulo their number). Raises what the first attempt raised."""
    nodes = split(url)
    first = start % len(nodes)
    connection = FailoverConnection(nodes[first:] + nodes[:first], reconnect_interval=RECONNECT_INTERVAL_S, **kwargs)
    await connection.connect()
    return connection


async def connect(url: str, **kwargs: Any) -> AbstractConnection:
    """A plain connection to the first node of `url` that answers (operator commands)."""
    failures: list[BaseException] = []
    for node in split(url):
        try:
            return await aio_pika.connect(node, **kwargs)
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
            failures.append(exc)
    raise failures[-1]
