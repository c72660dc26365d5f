"""Which proxy a request goes through: ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``.

The choice is made per request target (scheme, host, port), so a redirect to another host is
routed as that host asks. Rules, as requests and curl read them:

* ``https://`` targets use ``HTTPS_PROXY``, ``http://`` targets ``HTTP_PROXY``; either falls
  back to ``ALL_PROXY``. Lower-case names win over upper-case ones (as in urllib/requests).
* ``NO_PROXY`` is a comma-separated list: ``*`` (no proxy at all), host names (a leading dot
  is optional: ``example.com`` and ``.example.com`` both match the domain and every
  subdomain), IP addresses, CIDR networks (``10.0.0.0/8``, ``fd00::/8``) and any of these
  with ``:port`` (matches that port only).
* Proxy URLs: ``http://``, ``https://`` (TLS to the proxy), ``socks5://`` (the client resolves
  the target's name) and ``socks5h://`` (the proxy resolves it); ``user:password@`` is sent as
  ``Proxy-Authorization: Basic`` or as SOCKS5 username/password. Any other scheme is an
  error, never a silent direct connection.

Credentials never appear in a message or repr: a proxy is shown as ``scheme://host:port``.
"""

from __future__ import annotations

import base64
import ipaddress
import threading
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ._exceptions import InvalidArgumentError
from ._validation import got

__all__ = ["Proxy", "ProxyRules", "bypass_proxy", "parse_proxy"]

_SCHEMES = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}


class Proxy:
    """A proxy: where it listens, its kind and its credentials (never shown)."""

    __slots__ = ("auth", "host", "password", "port", "scheme", "tls", "username")

    def __init__(
        self,
        host: str,
        port: int,
        auth: str | None,
        tls: bool,
        *,
        scheme: str = "",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.auth = auth  # the Proxy-Authorization value of an http(s) proxy
        self.tls = tls
        self.scheme = scheme or ("https" if tls else "http")
        self.username = username
        self.password = password

    @property
    def socks(self) -> bool:
        """Whether this is a SOCKS5 proxy (``socks5`` or ``socks5h``)."""
        return self.scheme in ("socks5", "socks5h")

    @property
    def remote_dns(self) -> bool:
        """Whether the proxy resolves the target's host name (``socks5h``)."""
        return self.scheme == "socks5h"

    @property
    def shown(self) -> str:
        """The proxy for a message: ``scheme://host:port``, without credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def __repr__(self) -> str:
        return f"Proxy({self.shown!r})"


def parse_proxy(url: str, source: str = "proxy") -> Proxy:
    """Parse a proxy URL like ``http://user:pass@proxy:3128`` (scheme defaults to http).

    ``source`` names where it came from (``HTTPS_PROXY``...) in error messages; the URL itself
    is never shown (it may hold a password).
    """
    if not isinstance(url, str):
        raise InvalidArgumentError(f"{source}: expected a proxy URL string, got {got(url)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidArgumentError(
            f"{source}: expected a proxy URL without control characters, got one with them"
        )
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        if scheme in ("socks4", "socks4a", "socks"):
            hint = "SOCKS4 is not supported: use socks5:// or socks5h://, or an http:// proxy"
        else:
            hint = "supported are http://, https://, socks5:// and socks5h://"
        raise InvalidArgumentError(f"{source}: unsupported proxy scheme {scheme!r}; {hint}")
    try:
        host = parts.hostname
        port = parts.port or _SCHEMES[scheme]
    except ValueError:
        raise InvalidArgumentError(
            f"{source}: expected a valid port in the proxy URL, got an invalid one"
        ) from None
    if not host:
        raise InvalidArgumentError(f"{source}: expected a proxy URL with a host, got none")
    auth = username = password = None
    if parts.username is not None:
        username = unquote(parts.username)
        password = unquote(parts.password or "")
        if any(ord(c) < 32 or ord(c) == 127 for c in username + password):
            raise InvalidArgumentError(
                f"{source}: expected proxy credentials without control characters, got some "
                "with them"
            )
        raw = f"{username}:{password}".encode()
        auth = "Basic " + base64.b64encode(raw).decode("ascii")
    return Proxy(
        host,
        port,
        auth,
        scheme == "https",
        scheme=scheme,
        username=username,
        password=password,
    )


# ------------------------------------------------------------------------------ NO_PROXY


def _entries(no_proxy: str) -> list[tuple[str, int | None]]:
    """``NO_PROXY`` as (host or network, port or None) pairs, lower-case."""
    out: list[tuple[str, int | None]] = []
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        port: int | None = None
        if entry.startswith("["):  # [::1]:8080 or [::1]
            end = entry.find("]")
            if end > 0:
                rest = entry[end + 1 :]
                if rest.startswith(":") and rest[1:].isdigit():
                    port = int(rest[1:])
                entry = entry[1:end]
        elif entry.count(":") == 1:  # host:port (more colons: an IPv6 address or network)
            name, _, number = entry.partition(":")
            if number.isdigit():
                entry, port = name, int(number)
        out.append((entry, port))
    return out


def bypass_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` says a connection to ``host:port`` goes direct."""
    host = host.lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry, entry_port in _entries(no_proxy):
        if entry == "*":
            return True
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.lstrip(".").rstrip(".")
        if name.startswith("*."):
            name = name[2:]
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


# ------------------------------------------------------------------------------ rules


def _environment() -> dict[str, str]:
    import urllib.request

    return dict(urllib.request.getproxies_environment())


class Target(Protocol):
    """What the rules need of a request target (``_net.Target`` has it)."""

    scheme: str
    host: str
    port: int
    key: tuple[str, str, int]


class ProxyRules:
    """The proxies of a transport: from the environment (read once) or one fixed proxy.

    :meth:`for_target` is asked for every request; its answers are cached per target.
    """

    def __init__(
        self,
        proxies: Mapping[str, str] | None = None,
        no_proxy: str = "",
        *,
        fixed: str | None = None,
    ) -> None:
        self._proxies = dict(proxies or {})
        self._no_proxy = no_proxy
        self._fixed = fixed
        self._cache: dict[tuple[str, str, int], Proxy | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> ProxyRules:
        """The rules of ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``."""
        env = _environment()
        proxies = {key: env[key] for key in ("http", "https", "all") if env.get(key)}
        return cls(proxies, env.get("no", ""))

    @classmethod
    def coerce(cls, value: str | ProxyRules | None) -> ProxyRules | None:
        """A proxy URL (one proxy for every target), rules, or None (always direct)."""
        if value is None or isinstance(value, ProxyRules):
            return value
        rules = cls(fixed=value)
        parse_proxy(value)  # a bad URL fails now
        return rules

    @property
    def empty(self) -> bool:
        """Whether no target ever goes through a proxy."""
        return self._fixed is None and not self._proxies

    def for_target(self, target: Target) -> Proxy | None:
        """The proxy for this target, or None for a direct connection."""
        key = target.key
        try:
            return self._cache[key]
        except KeyError:
            pass
        proxy = self._choose(target)
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = proxy
        return proxy

    def _choose(self, target: Target) -> Proxy | None:
        if self._fixed is not None:
            return parse_proxy(self._fixed)
        scheme = target.scheme
        url = self._proxies.get(scheme)
        source = f"{scheme.upper()}_PROXY"
        if not url:
            url = self._proxies.get("all")
            source = "ALL_PROXY"
        if not url:
            return None
        if self._no_proxy and bypass_proxy(target.host, target.port, self._no_proxy):
            return None
        return parse_proxy(url, source)
