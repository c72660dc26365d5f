"""Running a parsed command: the client (real API or in-process emulator), errors, exit codes."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from .._exceptions import (
    AlephAlphaError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    InvalidArgumentError,
    MissingDependencyError,
)

if TYPE_CHECKING:
    from .._client import Client

__all__ = [
    "EXIT_API",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "App",
    "UsageError",
    "describe_error",
]

EXIT_OK = 0
EXIT_API = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: The token sent to the in-process emulator (it requires none).
EMULATOR_TOKEN = "emulator"


class UsageError(Exception):
    """Bad input detected by the CLI itself (exit status 2); the message is shown as is."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _host_of(url: str | None) -> str | None:
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return url


def _connection_reason(err: APIConnectionError) -> str:
    text = str(err)
    lowered = text.lower()
    for needle, reason in (
        ("refused", "connection refused"),
        ("name or service not known", "unknown host name"),
        ("nodename nor servname", "unknown host name"),
        ("temporary failure in name resolution", "host name lookup failed"),
        ("getaddrinfo failed", "host name lookup failed"),
        ("network is unreachable", "network unreachable"),
        ("connection reset", "connection reset by the server"),
        ("certificate", "TLS certificate check failed"),
    ):
        if needle in lowered:
            return reason
    # The last clause of a nested message is usually the useful one.
    tail = text.rsplit("] ", 1)[-1] if "] " in text else text
    return _one_line(tail)


def describe_error(err: BaseException, host: str | None = None) -> tuple[str, int]:
    """One line for stderr (without ``error:``) and the exit status of an error."""
    if isinstance(err, UsageError):
        return _one_line(str(err)), EXIT_USAGE
    if isinstance(err, MissingDependencyError):
        return _one_line(str(err)), EXIT_USAGE
    if isinstance(err, APITimeoutError):
        where = _host_of(err.url) or host or "the API"
        return (
            f"timed out waiting for {where} ({err.phase} timeout); "
            "raise --timeout or try again later",
            EXIT_API,
        )
    if isinstance(err, APIConnectionError):
        where = _host_of(err.url) or host or "the API"
        return (
            f"cannot connect to {where}: {_connection_reason(err)} "
            "(check --host or ALEPH_ALPHA_BASE_URL)",
            EXIT_API,
        )
    if isinstance(err, APIStatusError):
        detail = err.message if err.message is not None else _one_line(err.text)[:300]
        code = f" [{err.code}]" if err.code else ""
        line = f"the API answered {err.status_code}{code}: {detail}".rstrip(": ")
        if isinstance(err, AuthenticationError):
            line += " (check --token or ALEPH_ALPHA_API_KEY)"
        elif err.code in ("UNKNOWN_MODEL", "MISSING_CAPABILITY"):
            line += " (see: aleph-alpha models)"
        if err.request_id:
            line += f" (request id {err.request_id})"
        return _one_line(line), EXIT_API
    if isinstance(err, InvalidArgumentError):
        return _one_line(str(err)), EXIT_USAGE
    if isinstance(err, AlephAlphaError):
        # Other API errors: broken streams, unexpected bodies, ...
        return _one_line(str(err)), EXIT_API
    if isinstance(err, OSError):
        return _one_line(str(err)), EXIT_USAGE
    return f"unexpected {type(err).__name__}: {_one_line(str(err))}", EXIT_API


_NO_TOKEN = (
    "no API token: pass --token TOKEN, set ALEPH_ALPHA_API_KEY (or AA_TOKEN), "
    "or add --emulator to try the offline emulator"
)


@dataclass
class App:
    """What a command needs: parsed arguments, the output streams and a client factory."""

    args: Any
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO | None = field(default_factory=lambda: sys.stdin)
    host: str | None = None

    def info(self, text: str) -> None:
        """A line of progress or information on stderr."""
        print(text, file=self.stderr, flush=True)

    def error(self, err: BaseException) -> int:
        """Print one ``error: ...`` line for ``err``; its exit status."""
        line, status = describe_error(err, self.host)
        print(f"aleph-alpha: error: {line}", file=self.stderr, flush=True)
        return status

    def out(self, text: str, end: str = "\n") -> None:
        """Write a result to stdout and flush."""
        self.stdout.write(text + end)
        self.stdout.flush()

    def stdin_is_tty(self) -> bool:
        """Whether stdin is an interactive terminal (False when there is no stdin)."""
        stream = self.stdin
        if stream is None:
            return False
        try:
            return bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            return False

    def read_stdin(self, what: str) -> str:
        """All of stdin as the input ``what`` (a UsageError when there is none)."""
        if self.stdin is None or self.stdin_is_tty():
            raise UsageError(f"no {what}: give it as an argument or pipe it on stdin")
        try:
            text = self.stdin.read()
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot read the {what} from stdin: {err}") from None
        text = text.strip()
        if not text:
            raise UsageError(f"no {what}: stdin was empty")
        return text

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        """A client for the command: the real API, or an emulator started for the command."""
        from .._client import Client

        args = self.args
        timeout = args.timeout
        retries = args.retries
        with contextlib.ExitStack() as stack:
            if args.emulator:
                from ..emulator.server import Emulator

                emulator = stack.enter_context(Emulator())
                token: str | None = EMULATOR_TOKEN
                host: str | None = emulator.url
            else:
                token = args.token
                if not token:
                    token = os.environ.get("ALEPH_ALPHA_API_KEY") or os.environ.get("AA_TOKEN")
                if not token:
                    raise UsageError(_NO_TOKEN)
                host = args.api_host
            self.host = host or os.environ.get("ALEPH_ALPHA_BASE_URL") or None
            if self.host is None:
                from .._config import DEFAULT_HOST

                self.host = DEFAULT_HOST
            client = Client(
                token=token,
                host=host,
                request_timeout_seconds=timeout,
                total_retries=retries,
            )
            stack.callback(client.close)
            yield client
