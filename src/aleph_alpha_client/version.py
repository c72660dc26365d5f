"""The package version and the User-Agent it sends."""

from __future__ import annotations

__all__ = ["MIN_API_VERSION", "__version__", "user_agent_headers"]

#: The version of this package (also the distribution's, ``aleph-alpha-client``).
__version__ = "12.1.0"

#: The oldest API version this client works with.
MIN_API_VERSION = "1.19.0"


def user_agent_headers() -> dict[str, str]:
    """The User-Agent header, in the official client's style."""
    return {"User-Agent": f"Aleph-Alpha-Python-Client-{__version__}"}
