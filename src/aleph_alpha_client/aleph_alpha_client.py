"""The official client's module path: ``from aleph_alpha_client.aleph_alpha_client import Client``."""

from __future__ import annotations

from ._async_client import AsyncClient
from ._client import Client
from ._config import DEFAULT_REQUEST_TIMEOUT
from ._exceptions import BusyError, QuotaError, status_error
from ._retry import RETRY_STATUS_CODES

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "RETRY_STATUS_CODES",
    "AsyncClient",
    "BusyError",
    "Client",
    "QuotaError",
]


def _raise_for_status(status_code: int, text: str) -> None:
    """Raise the typed error of an HTTP status >= 400, as the official helper did."""
    if status_code >= 400:
        raise status_error(status_code, text)
