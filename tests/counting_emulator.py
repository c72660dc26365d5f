"""The emulator, counting what the server sees in flight, for the batch concurrency tests.

A request is in flight from the moment the server has read it until its answer is written
(the emulator's ``latency`` is spent in between). :attr:`CountingEmulator.arrivals` logs
``(time.monotonic(), in flight including this one)`` per request in arrival order, so a test
can read the peak, what happened after a storm, or how many requests arrived in any window.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from aleph_alpha_client.emulator import Emulator


class CountingEmulator(Emulator):
    """An :class:`Emulator` that counts the requests it is answering at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._count_lock = threading.Lock()
        self.in_flight = 0
        self.arrivals: list[tuple[float, int]] = []

    @property
    def peak_in_flight(self) -> int:
        """The most requests the server was answering at once."""
        with self._count_lock:
            return max((count for _, count in self.arrivals), default=0)

    async def _serve(self, request: Any, writer: asyncio.StreamWriter) -> bool:
        with self._count_lock:
            self.in_flight += 1
            self.arrivals.append((time.monotonic(), self.in_flight))
        try:
            return await super()._serve(request, writer)
        finally:
            with self._count_lock:
                self.in_flight -= 1
