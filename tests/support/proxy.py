"""A TCP proxy for fault-injection tests: point a service at `proxy.url_for(url)` instead of
the broker or the database, then cut or stall the network under it.

    proxy = FaultProxy("127.0.0.1", 5672)
    await proxy.start()
    connection = await aio_pika.connect_robust(proxy.url_for(amqp_url))
    await proxy.cut()          # every open connection is reset, new ones are refused
    proxy.restore()            # clients may connect again
    proxy.blackhole(True)      # connections stay up but no byte moves either way
    proxy.blackhole(False)     # held bytes are delivered, in order
    await proxy.close()

Faults, as the client (and the server) see them:

* `cut()`: each open connection is reset on both sides (TCP RST, not FIN: the socket is closed
  with SO_LINGER 0, so the peer's next read or write fails with ECONNRESET instead of looking
  like an orderly shutdown). While cut, the listener still accepts at the TCP level (the kernel
  completes the handshake before we see anything), but each accepted socket is reset at once,
  so a connect fails immediately during the protocol handshake. Closing the listening socket
  instead would give ECONNREFUSED, but would risk losing the port before `restore()`.
* `blackhole(True)`: a silent partition. Nothing is reset and nothing is forwarded, so a
  request waiting for its answer (a publish waiting for its confirm, a query waiting for its
  rows) hangs until the client's own timeout or heartbeat gives up. New connections are
  accepted but left silent (the upstream is not even dialled) until the blackhole is lifted.
  No byte is dropped: like TCP retransmission after a partition heals, bytes sent meanwhile
  are held (in the proxy's bounded buffers, then in the kernel's socket buffers, then the
  sender's TCP window closes) and delivered in order once `blackhole(False)` is called. A
  client that gave up meanwhile closes or resets its side, and that close travels through once
  forwarding resumes.

Memory is bounded: each direction reads at most CHUNK bytes at a time and waits for the
writer to drain below its high-water mark before reading more; the reader's own buffer stops
reading from the socket past 2 * CHUNK (asyncio's flow control).

Everything runs on the event loop (no threads). `close()` resets whatever is still open and
waits for every task and transport it created to finish, so nothing is left pending or unclosed.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
CONNECT_TIMEOUT_S = 5.0

# SO_LINGER on, timeout 0: close() discards unsent data and sends RST instead of FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close a stream's transport at once with a TCP RST; a no-op if it is already closing."""
    if writer is None:
        return
    transport = writer.transport
    if transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    # abort(), unlike close(), does not wait for the write buffer to flush: the connection
    # dies now, even if the peer is not reading.
    transport.abort()


async def _closed(writer: asyncio.StreamWriter | None) -> None:
    """Wait until the transport's connection_lost has run (its socket is really closed).

    abort()/close() only schedule that for the next loop iteration; waiting here is what keeps
    an 'unclosed transport' ResourceWarning from firing if the loop stops right after us."""
    if writer is None:
        return
    with contextlib.suppress(Exception):  # the peer's reset surfaces here as ConnectionResetError
        await writer.wait_closed()


def _report(task: asyncio.Task[None]) -> None:
    """Retrieve a connection task's unexpected exception (a bug in the proxy, not a network
    fault, which the pumps absorb), so it is logged now rather than as 'Task exception was
    never retrieved' at some later garbage collection."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("proxy connection task failed", exc_info=exc)


class _Connection:
    """One proxied connection: the accepted client stream, the upstream stream once dialled,
    and the task that runs both pumps."""

    __slots__ = ("client_reader", "client_writer", "upstream_writer", "task")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.client_reader = reader
        self.client_writer = writer
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    def reset(self) -> None:
        _reset(self.client_writer)
        _reset(self.upstream_writer)


class FaultProxy:
    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.listen_host = listen_host
        self._listen_port = listen_port
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._cut = False
        self._closing = False
        # Set while bytes may flow; the pumps wait on it, which is the whole blackhole.
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.bytes_up = 0  # client -> upstream, counted once written to the upstream
        self.bytes_down = 0  # upstream -> client, counted once written to the client
        self.accepted = 0  # connections accepted and proxied (or held, while blackholed)
        self.refused = 0  # connections reset on accept because the proxy was cut or closing

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("proxy already started")
        # A plain (non-coroutine) callback: asyncio wraps a coroutine callback in a task of its
        # own whose done-callback calls task.exception(), which raises if the task was cancelled;
        # keeping the tasks ours lets cut()/close() cancel and await them safely.
        self._server = await asyncio.start_server(
            self._on_accept, self.listen_host, self._listen_port, limit=CHUNK
        )

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("proxy not started")
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self._drop_all()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- faults -------------------------------------------------------------------------

    async def cut(self) -> None:
        """Reset every open connection (both sides, at once) and refuse new ones until restore()."""
        self._cut = True
        await self._drop_all()

    def restore(self) -> None:
        """Accept and forward again after cut(). Does not lift a blackhole."""
        self._cut = False

    async def cut_for(self, seconds: float) -> None:
        await self.cut()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.restore()

    def blackhole(self, on: bool) -> None:
        """Stop (on=True) or resume (on=False) forwarding in both directions, without closing
        anything. Held bytes are delivered, not dropped, once resumed (see the module doc)."""
        if on:
            self._flowing.clear()
        else:
            self._flowing.set()

    @property
    def is_cut(self) -> bool:
        return self._cut

    @property
    def is_blackholed(self) -> bool:
        return not self._flowing.is_set()

    @property
    def connections(self) -> int:
        """Connections currently open through the proxy (held ones included)."""
        return len(self._connections)

    # ---- addresses ----------------------------------------------------------------------

    def url_for(self, url: str) -> str:
        """The same URL (scheme, credentials, path, query) with host:port pointing at the proxy.

        Works for amqp://, postgresql:// and any URL with a single host. Credentials are kept
        byte for byte (not re-encoded)."""
        parts = urlsplit(url)
        if "," in parts.netloc:
            raise ValueError(f"multi-host URLs are not supported: {url!r}")
        userinfo, at, _ = parts.netloc.rpartition("@")
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}:{self.port}"))

    # ---- internals ----------------------------------------------------------------------

    def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut or self._closing:
            # Refuse: reset right here, synchronously, before any byte is exchanged.
            self.refused += 1
            _reset(writer)
            return
        self.accepted += 1
        conn = _Connection(reader, writer)
        self._connections.add(conn)
        conn.task = asyncio.get_running_loop().create_task(self._serve(conn))
        conn.task.add_done_callback(_report)

    async def _drop_all(self) -> None:
        connections = list(self._connections)
        # Reset every socket first, synchronously, so that all connections die in the same
        # loop iteration; only then cancel and reap the tasks.
        for conn in connections:
            conn.reset()
        tasks = [conn.task for conn in connections if conn.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A task cancelled before its first step never runs its finally, and one cancelled
        # while in its finally stops there: finish their cleanup here (it is idempotent).
        for conn in connections:
            self._connections.discard(conn)
            await _closed(conn.client_writer)
            await _closed(conn.upstream_writer)

    async def _serve(self, conn: _Connection) -> None:
        pumps: list[asyncio.Task[None]] = []
        orderly = False
        try:
            # During a blackhole a new connection stays silent: the upstream is dialled only
            # once bytes may flow, so the server does not time out an idle handshake meanwhile.
            await self._flowing.wait()
            try:
                # asyncio.timeout rather than wait_for: on 3.11, wait_for can lose a connection
                # that completes just as it times out, leaving an unclosed transport behind.
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    upstream_reader, conn.upstream_writer = await asyncio.open_connection(
                        self.upstream_host, self.upstream_port, limit=CHUNK
                    )
            except (OSError, TimeoutError):
                return  # upstream down: the finally resets the client, as a dead server would
            pumps = [
                asyncio.create_task(self._pump(conn, conn.client_reader, conn.upstream_writer, up=True)),
                asyncio.create_task(self._pump(conn, upstream_reader, conn.client_writer, up=False)),
            ]
            # Each pump ends on EOF (after half-closing the other side) or on an error (after
            # resetting both sides, which ends the other pump too). Both must end.
            await asyncio.gather(*pumps)
            orderly = True
        finally:
            for pump in pumps:
                pump.cancel()
            if pumps:
                await asyncio.gather(*pumps, return_exceptions=True)
            if orderly:
                # Both sides sent EOF. drain() only waits for the write buffer to fall below its
                # high-water mark, so the last bytes may still be queued: close() flushes them
                # first, where a reset would discard them. (After a pump error both transports
                # are already aborted and close() is a no-op.)
                conn.client_writer.close()
                if conn.upstream_writer is not None:
                    conn.upstream_writer.close()
            else:
                conn.reset()  # upstream unreachable, cut(), close(), or a bug
            self._connections.discard(conn)
            await _closed(conn.client_writer)
            await _closed(conn.upstream_writer)

    async def _pump(
        self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(CHUNK)
                if not data:
                    break
                # Wait again: a chunk read just before blackhole(True) is held, not forwarded.
                await self._flowing.wait()
                writer.write(data)
                # Backpressure: do not read more until the other side took this chunk.
                await writer.drain()
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
            # Orderly EOF from this side: pass the half-close on; the other direction keeps
            # flowing until its own EOF.
            if writer.can_write_eof() and not writer.transport.is_closing():
                writer.write_eof()
        except OSError:
            # A reset or a broken pipe on either side ends the whole connection, as it would
            # end a direct one.
            conn.reset()
