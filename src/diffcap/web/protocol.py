"""uvicorn's h11 protocol with a deadline for request headers (slow-header "slowloris"
connections are closed).

uvicorn times out idle keep-alive connections, but not a connection that sends a request's
headers part of the way and then trickles or stops: each one would hold a socket forever,
and a few thousand exhaust the process's file descriptors. Here every request's headers
must arrive in full within ``header_timeout_s`` of the connection (or of the previous
response), else the connection is closed.

    config = uvicorn.Config(app, http=header_deadline_protocol(10.0))
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a client gets to send a request's headers in full.
HEADER_TIMEOUT_S = 10.0


class HeaderDeadlineH11(H11Protocol):
    """:class:`H11Protocol` that closes connections whose headers do not arrive in time."""

    header_timeout_s: float = HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # a request's headers are still incomplete
            self._arm()
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The keep-alive timer covers an idle connection; this one, a next request whose
        # headers start but never finish.
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(timeout_s: float = HEADER_TIMEOUT_S) -> type[HeaderDeadlineH11]:
    """A protocol class for ``uvicorn.Config(http=...)`` with this header deadline."""
    return type("HeaderDeadlineH11", (HeaderDeadlineH11,), {"header_timeout_s": timeout_s})
