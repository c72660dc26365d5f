"""What both clients share that is not I/O: configuration, options, logging of attempts."""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import weakref
from collections.abc import Mapping
from typing import Any, TypeVar

from ._config import (
    ClientConfig,
    Timeout,
    check_stream_timeout,
    path_segment,
)
from ._exceptions import (
    APIResponseValidationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    MissingDependencyError,
)
from ._hooks import check_headers, check_query, merge_headers, merge_query
from ._request import HTTPRequest
from ._validation import check_hosting, check_max_retry_after, check_retries, check_tags
from ._wire import base_headers, build_get, build_multipart_post
from .model_settings import ModelSettings, describe_capabilities
from .version import MIN_API_VERSION

logger = logging.getLogger("aleph_alpha_client")

_Self = TypeVar("_Self", bound="BaseClient")

_UNSET: Any = object()

#: Every live client, so that a forked child can drop the pools it inherited.
_LIVE_CLIENTS: weakref.WeakSet[BaseClient] = weakref.WeakSet()
#: Pools a forked child inherited: kept referenced and never closed or used in the child, so
#: that neither garbage collection nor a call in the child touches the parent's connections.
_INHERITED_POOLS: list[Any] = []


def _forget_pools_after_fork() -> None:
    for client in list(_LIVE_CLIENTS):
        box = client.__dict__.get("_transport_box")
        if box and box[0] is not None:
            _INHERITED_POOLS.append(box[0])
            box[0] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_after_fork)


class BaseClient:
    """Configuration shared by :class:`Client` and :class:`AsyncClient`."""

    _config: ClientConfig
    _headers: dict[str, str]

    def _setup(self, config: ClientConfig) -> None:
        self._config = config
        self._headers = base_headers(config)
        # Model settings fetched by model_settings(), by name: error messages use them.
        self.__dict__.setdefault("_settings_cache", {})
        _LIVE_CLIENTS.add(self)

    # Pickling carries the configuration (token included), never the pool or its sockets: the
    # unpickled client opens its own connections on first use.
    def __getstate__(self) -> dict[str, Any]:
        if self.__dict__.get("_ssl_context") is not None:
            raise InvalidArgumentTypeError(
                "ssl_context: a client made with an ssl.SSLContext cannot be pickled (an "
                "SSLContext cannot be); pass cert= and a CA bundle (REQUESTS_CA_BUNDLE or "
                "SSL_CERT_FILE) instead, or build the client in the worker"
            )
        user_transport = self.__dict__.get("_user_transport")
        if user_transport is not None:
            try:
                import pickle

                pickle.dumps(user_transport)
            except Exception as err:
                raise InvalidArgumentTypeError(
                    "transport: this client's transport= / http_client= cannot be pickled "
                    f"({type(user_transport).__name__}: {err}); build the client in the worker, "
                    "or pickle one without it"
                ) from None
        state = self.__dict__.copy()
        if "_transport_box" in state:
            state["_transport_box"] = [None]
        if "_mock_transports" in state:  # made again, by the mock active where it lands
            state["_mock_transports"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _LIVE_CLIENTS.add(self)

    def __copy__(self) -> Any:
        # with_options() copies share the pool (the one-slot box), the TLS settings and the
        # transports: a copy is not a pickle (``__getstate__`` would drop the pool).
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        _LIVE_CLIENTS.add(clone)
        return clone

    # The official client's public attributes.
    @property
    def host(self) -> str:
        """The API's base URL, ending in ``/``."""
        return self._config.host

    @property
    def hosting(self) -> str | None:
        """Where requests may be processed (``None`` or ``"aleph-alpha"``)."""
        return self._config.hosting

    @property
    def token(self) -> Any:
        """The API token, or the token callable when one was given (never shown in repr,
        errors or logs)."""
        provider = self._config.token_provider
        return self._config.token if provider is None else provider

    @property
    def nice(self) -> bool:
        """Whether requests are sent with ``?nice=true`` (lower priority)."""
        return self._config.nice

    @property
    def tags(self) -> list[str] | None:
        """Tags sent with every request."""
        return None if self._config.tags is None else list(self._config.tags)

    @property
    def request_timeout_seconds(self) -> float | None:
        """The total timeout of one non-streaming attempt."""
        return self._config.timeout.total

    @property
    def timeout(self) -> Timeout:
        """All timeouts of one attempt."""
        return self._config.timeout

    @property
    def max_retries(self) -> int:
        """How often a failed request is retried (the official ``total_retries``)."""
        return self._config.retry.max_retries

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(host={self._config.host!r}, hosting={self._config.hosting!r})"
        )

    def with_options(
        self: _Self,
        *,
        timeout: Timeout | float | None = _UNSET,
        max_retries: int | None = None,
        max_retry_after: float | None = None,
        retry_read_timeouts: bool | None = None,
        hosting: str | None = _UNSET,
        tags: list[str] | None = _UNSET,
        nice: bool | None = None,
        stream_timeout: float | None = _UNSET,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str | int | float | bool] | None = None,
    ) -> _Self:
        """A copy with other options that shares this client's connection pool.

        ``client.with_options(max_retries=0, timeout=5).chat(...)`` overrides for one call;
        ``stream_timeout`` bounds a whole stream (``None``: no bound). ``extra_headers`` are
        sent with every request of the copy, on top of (and replacing, name by name)
        ``default_headers``; ``extra_query`` parameters are added to every URL.
        """
        config = self._config
        retry = config.retry
        if max_retries is not None:
            retry = dataclasses.replace(
                retry, max_retries=check_retries("max_retries", max_retries)
            )
        if max_retry_after is not None:
            retry = dataclasses.replace(
                retry, max_retry_after=check_max_retry_after(max_retry_after)
            )
        if retry_read_timeouts is not None:
            retry = dataclasses.replace(retry, retry_read_timeouts=bool(retry_read_timeouts))
        changes: dict[str, Any] = {"retry": retry}
        new_timeout = config.timeout
        if timeout is not _UNSET:
            new_timeout = Timeout.coerce(timeout)
            if not isinstance(timeout, Timeout):  # a number keeps the stream bound
                new_timeout = dataclasses.replace(new_timeout, stream=config.timeout.stream)
        if stream_timeout is not _UNSET:
            new_timeout = dataclasses.replace(
                new_timeout, stream=check_stream_timeout(stream_timeout)
            )
        if new_timeout is not config.timeout:
            changes["timeout"] = new_timeout
        if hosting is not _UNSET:
            changes["hosting"] = check_hosting(hosting)
        if tags is not _UNSET:
            changes["tags"] = check_tags(tags)
        if nice is not None:
            changes["nice"] = bool(nice)
        if extra_headers is not None:
            changes["extra_headers"] = merge_headers(
                config.extra_headers, check_headers(extra_headers, "extra_headers")
            )
        if extra_query is not None:
            changes["extra_query"] = merge_query(
                config.extra_query, check_query(extra_query, "extra_query")
            )
        clone = copy.copy(self)
        clone._setup(config.with_changes(**changes))
        return clone

    # Requests that need no request object.
    def _get_version_request(self) -> HTTPRequest:
        return build_get(self._config, self._headers, "version")

    def _models_request(self) -> HTTPRequest:
        return build_get(self._config, self._headers, "models_available")

    def _model_settings_request(self) -> HTTPRequest:
        return build_get(self._config, self._headers, "model-settings")

    def _remember_settings(self, settings: list[ModelSettings]) -> list[ModelSettings]:
        """Keep the settings for error messages (shared with ``with_options`` copies)."""
        cache = self.__dict__.setdefault("_settings_cache", {})
        cache.clear()
        cache.update({s.name: s for s in settings})
        return settings

    def _note_capabilities(self, error: BaseException, model: str | None) -> None:
        """Say in a MISSING_CAPABILITY error what the model can do, if its settings are known."""
        cache = self.__dict__.get("_settings_cache")
        if cache and model is not None:
            describe_capabilities(error, cache.get(model))

    def _transcribe_request(self, audio: Any, model: str, language: str | None) -> HTTPRequest:
        from .transcription import transcription_parts

        parts = transcription_parts(audio, model, language)
        return build_multipart_post(self._config, self._headers, "transcribe", parts)

    def _tokenizer_request(self, model: str) -> HTTPRequest:
        if not isinstance(model, str) or not model.strip():
            raise InvalidArgumentError(f"model: expected a model name, got {model!r}")
        if model in (".", ".."):
            # escaped as %2E%2E it would still climb out of its segment over requests and
            # aiohttp, which normalise the escape back to ".." before sending
            raise InvalidArgumentError(f"model: expected a model name, got {model!r}")
        _tokenizer_class()  # a missing extra fails before anything is sent
        return build_get(self._config, self._headers, f"models/{path_segment(model)}/tokenizer")


def check_version(version: str) -> None:
    """Raise RuntimeError unless the API version is 1.x and at least MIN_API_VERSION."""

    def parts(text: str) -> tuple[int, ...]:
        numbers = []
        for piece in text.strip().split("."):
            digits = "".join(ch for ch in piece if ch.isdigit())
            numbers.append(int(digits) if digits else 0)
        return tuple(numbers)

    found, minimum = parts(version), parts(MIN_API_VERSION)
    if not found or found[0] != minimum[0] or found < minimum:
        raise RuntimeError(
            f"The aleph alpha client requires at least API version {MIN_API_VERSION} "
            f"with major version {minimum[0]}, found version {version.strip()!r}"
        )


def _tokenizer_class() -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise MissingDependencyError("tokenizers", "tokenizers", "Client.tokenizer") from None
    return Tokenizer


def make_tokenizer(text: str) -> Any:
    """A ``tokenizers.Tokenizer`` from a tokenizer.json document."""
    try:
        return _tokenizer_class().from_str(text)
    except MissingDependencyError:
        raise
    except Exception as err:  # tokenizers raises a bare Exception for a bad document
        raise APIResponseValidationError(
            f"the answer is not a valid tokenizer.json ({err})", text=text
        ) from None


def make_progress_bar(enabled: bool, total: int) -> Any:
    """A tqdm progress bar when asked for (extra ``tqdm``), else None."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        raise MissingDependencyError("tqdm", "tqdm", "progress_bar=True") from None
    return tqdm(total=total)
