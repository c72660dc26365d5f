"""Request building and response parsing: pure, shared by both clients.

``build_request`` turns a request object into an :class:`HTTPRequest` exactly as the official
client puts it on the wire (``request.to_json()``, then ``model``, ``hosting``, ``tags`` and
``stream``; ``json.dumps`` with default separators; ``?nice=true`` on POSTs). ``parse_*``
turn an answer into a model or a typed error; no foreign exception leaves this module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit

from ._config import ClientConfig, has_control
from ._exceptions import (
    APIResponseValidationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    StreamEventError,
    status_error,
)
from ._json import loads
from ._multipart import encode_multipart
from ._request import HTTPRequest
from .version import user_agent_headers

__all__ = [
    "base_headers",
    "build_get",
    "build_request",
    "parse_json",
    "parse_model",
    "error_for_status",
    "redirect",
]

T = TypeVar("T")
logger = logging.getLogger("aleph_alpha_client")

_PARSE_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)


def base_headers(config: ClientConfig) -> dict[str, str]:
    """The headers every request carries (a static token is only ever here; a token
    callable's token is added per request by :func:`with_token`)."""
    headers = {"Accept-Encoding": "gzip, deflate", **user_agent_headers()}
    if config.token_provider is None:
        headers = {"Authorization": f"Bearer {config.token}", **headers}
    for name, value in config.extra_headers:
        low = name.lower()
        for key in [key for key in headers if key.lower() == low]:
            del headers[key]
        headers[name] = value
    return headers


def with_token(request: HTTPRequest, token: str) -> None:
    """Put a token callable's token on ``request`` (in place)."""
    request.headers["Authorization"] = f"Bearer {token}"


def _query(config: ClientConfig, nice: bool) -> str:
    if not config.extra_query and not nice:
        return ""
    from urllib.parse import urlencode

    pairs = [("nice", "true")] if nice else []
    pairs.extend(config.extra_query)
    return "?" + urlencode(pairs)


def _validate(request: Any) -> None:
    validate = getattr(request, "_validate", None)
    if validate is not None:
        validate()


def build_request(
    config: ClientConfig,
    headers: Mapping[str, str],
    path: str,
    request: Any,
    model: str | None,
    *,
    stream: bool = False,
    request_type: type | tuple[type, ...] | None = None,
    argument: str = "request",
) -> HTTPRequest:
    """Validate ``request`` and build the POST that sends it. Raises before anything is sent."""
    if request_type is not None and not isinstance(request, request_type):
        expected = (
            request_type.__name__
            if isinstance(request_type, type)
            else " or ".join(t.__name__ for t in request_type)
        )
        raise InvalidArgumentTypeError(
            f"{argument}: expected a {expected}, got {type(request).__name__}"
        )
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InvalidArgumentError(
            f"model: expected a model name like 'llama-3.1-8b-instruct', got {model!r}"
        )
    _validate(request)
    payload = dict(request.to_json())
    if model is not None:
        payload["model"] = model
    elif "model" in payload:
        name = payload["model"]
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError(
                f"model: no model argument and {type(request).__name__}.model is {name!r}; "
                "expected a model name like 'llama-3.1-8b-instruct'"
            )
    if config.hosting is not None:
        payload["hosting"] = config.hosting
    if config.tags is not None:
        payload["tags"] = list(config.tags)
    if stream:
        payload["stream"] = True
    return build_post(config, headers, path, payload, stream=stream)


def build_post(
    config: ClientConfig,
    headers: Mapping[str, str],
    path: str,
    payload: Any,
    *,
    stream: bool = False,
) -> HTTPRequest:
    """A POST of a JSON payload (already holding model, hosting, tags)."""
    try:
        body = json.dumps(payload, allow_nan=False).encode("ascii")
    except ValueError as err:
        raise InvalidArgumentError(
            f"request: contains NaN or infinity, which JSON cannot carry ({err})"
        ) from None
    except TypeError as err:
        raise InvalidArgumentTypeError(f"request: cannot be sent as JSON: {err}") from None
    url = config.host + path + _query(config, config.nice)
    all_headers = dict(headers)
    all_headers["Content-Type"] = "application/json"
    all_headers["Accept"] = "text/event-stream" if stream else "application/json"
    return HTTPRequest("POST", url, all_headers, body, stream, config.max_response_size)


def build_multipart_post(
    config: ClientConfig, headers: Mapping[str, str], path: str, parts: Any
) -> HTTPRequest:
    """A POST of a ``multipart/form-data`` body (``parts``: a list of ``FormPart``)."""
    body, content_type = encode_multipart(parts)
    all_headers = dict(headers)
    all_headers["Content-Type"] = content_type
    all_headers["Accept"] = "application/json"
    return HTTPRequest(
        "POST",
        config.host + path + _query(config, False),
        all_headers,
        body,
        False,
        config.max_response_size,
    )


def build_get(config: ClientConfig, headers: Mapping[str, str], path: str) -> HTTPRequest:
    """A GET of an endpoint path."""
    return HTTPRequest(
        "GET",
        config.host + path + _query(config, False),
        dict(headers),
        None,
        False,
        config.max_response_size,
    )


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _maybe_json(body: bytes) -> Any:
    try:
        return loads(body)
    except (ValueError, RecursionError):
        return None


def error_for_status(status: int, headers: Mapping[str, str], body: bytes, url: str) -> Exception:
    """The typed error of a status >= 400 (``args == (status, text)``)."""
    return status_error(status, _text(body), headers=headers, body=_maybe_json(body), url=url)


def parse_json(status: int, headers: Mapping[str, str], body: bytes) -> Any:
    """The JSON of a 2xx answer, or a typed error naming the status and the body's start."""
    content_type = headers.get("content-type", "")
    if content_type and "json" not in content_type and "text/plain" not in content_type:
        raise APIResponseValidationError(
            f"expected a JSON answer, got Content-Type {content_type!r}",
            status_code=status,
            text=_text(body),
        )
    try:
        return loads(body)
    except (ValueError, RecursionError) as err:
        raise APIResponseValidationError(
            f"the answer is not valid JSON ({err.__class__.__name__})",
            status_code=status,
            text=_text(body),
        ) from None


def parse_model(parser: Callable[[Any], T], data: Any, status: int, body: bytes) -> T:
    """Run a ``from_json`` parser; a wrong shape becomes a typed error."""
    try:
        return parser(data)
    except APIResponseValidationError as err:
        if err.status_code is not None:
            raise
        # The model's own check: add the status and the body's start.
        raise APIResponseValidationError(str(err), status_code=status, text=_text(body)) from None
    except _PARSE_ERRORS as err:
        raise APIResponseValidationError(
            f"the answer does not have the expected shape ({err.__class__.__name__}: {err})",
            status_code=status,
            text=_text(body),
        ) from None


def parse_text(status: int, body: bytes) -> str:
    """The text of a 2xx answer."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise APIResponseValidationError(
            "the answer is not UTF-8 text", status_code=status, text=_text(body)
        ) from None


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


_URL_SAFE = "/%:@!$&'()*+,;=-._~"


def redirect(request: HTTPRequest, status: int, headers: Mapping[str, str]) -> HTTPRequest | None:
    """The request to send after a redirect, or None when ``status`` is not one.

    307/308 keep the method and body; 301/302/303 become a GET. The Authorization header is
    dropped when the redirect leaves the original scheme, host or port, except for an upgrade
    from ``http://`` to ``https://`` on the same host with default ports (as requests does).
    """
    if status not in _REDIRECTS:
        return None
    location = headers.get("location")
    if not location:
        return None
    if has_control(location):
        # urlsplit would drop CR, LF and TAB and follow what is left
        raise APIResponseValidationError(
            f"the server redirected to an invalid URL {location[:200]!r}: control characters",
            status_code=status,
        )
    try:
        url = urljoin(request.url, location)
        old, new = urlsplit(request.url), urlsplit(url)
        new_port, old_port = new.port, old.port  # ValueError for ":99999" or "[::1"
    except ValueError as err:
        raise APIResponseValidationError(
            f"the server redirected to an invalid URL {location[:200]!r}: {err}",
            status_code=status,
        ) from None
    if new.scheme not in ("http", "https"):
        return None
    problem = None
    if not new.hostname:
        problem = "no host"
    elif not new.netloc.isascii():
        problem = "a host name that is not ASCII"
    elif "@" in new.netloc:
        problem = "credentials in the URL"
    if problem is not None:
        raise APIResponseValidationError(
            f"the server redirected to an invalid URL {location[:200]!r}: {problem}",
            status_code=status,
        )
    if not url.isascii() or " " in url:
        # as browsers do: non-ASCII and spaces are sent as UTF-8 percent-escapes
        url = new._replace(
            path=quote(new.path, safe=_URL_SAFE), query=quote(new.query, safe=_URL_SAFE + "?")
        ).geturl()
    new_headers = dict(request.headers)
    if not _keeps_token(old.scheme, old.hostname, old_port, new.scheme, new.hostname, new_port):
        for key in list(new_headers):
            if key.lower() == "authorization":
                del new_headers[key]
    method, body = request.method, request.body
    if status in (301, 302, 303) and method != "GET":
        method, body = "GET", None
        for key in list(new_headers):
            if key.lower() == "content-type":
                del new_headers[key]
    return HTTPRequest(method, url, new_headers, body, request.stream, request.max_body)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _keeps_token(
    old_scheme: str,
    old_host: str | None,
    old_port: int | None,
    new_scheme: str,
    new_host: str | None,
    new_port: int | None,
) -> bool:
    """Whether a redirect stays with the origin the token was meant for."""
    if old_host != new_host:
        return False
    old_port = old_port or _DEFAULT_PORTS.get(old_scheme)
    new_port = new_port or _DEFAULT_PORTS.get(new_scheme)
    if (old_scheme, new_scheme, old_port, new_port) == ("http", "https", 80, 443):
        return True  # the upgrade to TLS on the same host
    return (old_scheme, old_port) == (new_scheme, new_port)


def redirect_error(status: int, headers: Mapping[str, str], url: str) -> APIResponseValidationError:
    """The error for a redirect that is not followed (no Location, or too many)."""
    return APIResponseValidationError(
        f"unexpected redirect to {headers.get('location', '(no Location)')!r} from {url}",
        status_code=status,
    )


def is_event_stream(headers: Mapping[str, str]) -> bool:
    """Whether an answer is a server-sent event stream."""
    return "text/event-stream" in headers.get("content-type", "")


def stream_content_type_error(status: int, headers: Mapping[str, str], body: bytes) -> Exception:
    """The error for a stream request answered without an event stream.

    An API error object in it becomes a StreamEventError; anything else an
    APIResponseValidationError naming the content type and showing the body's start.
    """
    data = _maybe_json(body)
    if isinstance(data, Mapping) and "error" in data:
        err = data["error"]
        message = err.get("message", str(err)) if isinstance(err, Mapping) else str(err)
        code = data.get("code")
        return StreamEventError(str(message), code=None if code is None else str(code), body=data)
    return APIResponseValidationError(
        f"expected an event stream, got Content-Type {headers.get('content-type', '(none)')!r}",
        status_code=status,
        text=_text(body),
    )


def as_list(data: Any) -> list[Any]:
    """Parser of list answers (``models_available``)."""
    if not isinstance(data, list):
        raise TypeError(f"expected a JSON list, got {type(data).__name__}")
    return data
