"""An offline emulator of the Aleph Alpha HTTP API, for development and tests.

Pure standard library. Three layers:

* :mod:`.handlers`: pure functions, ``handle(method, path, headers, body) -> Response``, that
  answer every API route deterministically (fact table or echo answers, hashed embeddings,
  a reversible byte-level BPE tokenizer from :mod:`.tokenizer`, schema-valid structured
  output from :mod:`.schema`, tool calls), at the root and under ``/v1``.
* :mod:`.faults`: :class:`Fault` (error statuses with Retry-After, connection resets, latency,
  cut streams, error events, malformed bodies), scripted per request or drawn by rate from a
  seeded RNG; a spec-string syntax for the CLI (``"503:0.1,reset:0.05,latency=0.2"``).
* :mod:`.server`: :class:`Emulator`, an HTTP/1.1 keep-alive server on loopback running an
  asyncio loop in its own thread, and :func:`run_server` for ``aleph-alpha serve``.

Usage::

    with Emulator() as emu:
        client = Client(token="t", host=emu.url)
        emu.script([Fault.status(503, retry_after=0), None])   # one 503, then normal
        ...
        assert emu.requests[-1].json["model"] == "llama-3.1-8b-instruct"

A pytest plugin (:mod:`.pytest_plugin`, auto-registered) provides the ``aleph_alpha_emulator``
fixture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .faults import Fault, FaultPlan, parse_fault_spec
    from .handlers import DEFAULT_VERSION, HandlerConfig, Response, answer_for, handle
    from .models import MODELS, ModelInfo
    from .server import Emulator, Headers, RecordedRequest, run_server

_LAZY = {
    "Fault": "faults",
    "FaultPlan": "faults",
    "parse_fault_spec": "faults",
    "DEFAULT_VERSION": "handlers",
    "HandlerConfig": "handlers",
    "Response": "handlers",
    "answer_for": "handlers",
    "handle": "handlers",
    "MODELS": "models",
    "ModelInfo": "models",
    "Emulator": "server",
    "Headers": "server",
    "RecordedRequest": "server",
    "run_server": "server",
}


def __getattr__(name: str) -> Any:
    # Lazy so that the pytest plugin (a submodule) loads without the server and handlers.
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "DEFAULT_VERSION",
    "MODELS",
    "Emulator",
    "Fault",
    "FaultPlan",
    "HandlerConfig",
    "Headers",
    "ModelInfo",
    "RecordedRequest",
    "Response",
    "answer_for",
    "handle",
    "parse_fault_spec",
    "run_server",
]
