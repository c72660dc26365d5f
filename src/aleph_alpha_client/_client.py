"""The synchronous client: a thin shell that sends and sleeps (our own HTTP/1.1 client underneath: _sync_http)."""

from __future__ import annotations

import contextvars
import os
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from . import _endpoints as ep
from . import _tracing
from ._attempt import AttemptDriver, Done, Raise, Read, Refresh, Send, Sleep, Step
from ._base import BaseClient, check_version, make_progress_bar, make_tokenizer
from ._config import (
    DEFAULT_MAX_EVENT_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_REQUEST_TIMEOUT,
    Timeout,
    make_config,
)
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    IncompleteStreamError,
    StreamEventError,
)
from ._hooks import (
    ask_token_sync,
    run_request_hooks_sync,
    run_response_hooks_sync,
)
from ._mocks import sync_route
from ._raw import WithRawResponse, finish, tag_error
from ._request import HTTPRequest
from ._streaming import (
    Stream,
    StreamProcessor,
    _Holder,
)
from ._transport import SyncResponse, SyncTransport, check_tls, check_transport
from ._wire import (
    as_list,
    build_request,
    is_event_stream,
    parse_json,
    parse_model,
    parse_text,
    stream_content_type_error,
)
from .chat import (
    ChatRequest,
    ChatResponse,
    ChatStreamChunk,
    ChoiceFinishReason,
    FinishReason,
    ReasoningChunk,
    ToolCall,
    Usage,
)
from .completion import CompletionRequest, CompletionResponse, CompletionResponseStreamItem
from .detokenization import DetokenizationRequest, DetokenizationResponse
from .embedding import (
    BatchSemanticEmbeddingRequest,
    BatchSemanticEmbeddingResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingV2Request,
    EmbeddingV2Response,
    InstructableEmbeddingRequest,
    InstructableEmbeddingResponse,
    SemanticEmbeddingRequest,
    SemanticEmbeddingResponse,
)
from .evaluation import EvaluationRequest, EvaluationResponse
from .explanation import ExplanationRequest, ExplanationResponse
from .model_settings import ModelSettings
from .reranking import RerankRequest, RerankResponse
from .steering import SteeringConceptCreationRequest, SteeringConceptCreationResponse
from .tokenization import TokenizationRequest, TokenizationResponse
from .tools import ToolLoop, ToolLoopEvent, ToolRunResult, run_planned_sync
from .transcription import AudioInput, TranscriptionResponse
from .translation import TranslationRequest, TranslationResponse
from .transport import SyncTransportProtocol

__all__ = ["Client"]

#: Guards the first creation of a client's pool (threads may make their first call at once).
_TRANSPORT_LOCK = threading.Lock()

R = TypeVar("R")
ItemT = TypeVar("ItemT")
T = TypeVar("T")
ChatStreamItem = (
    ChatStreamChunk | ReasoningChunk | ToolCall | FinishReason | ChoiceFinishReason | Usage
)


class Client(BaseClient):
    """The synchronous client of the Aleph Alpha API.

    ``Client(token)`` is enough: the host defaults to ``ALEPH_ALPHA_BASE_URL`` or
    ``https://api.aleph-alpha.com``, the token to ``ALEPH_ALPHA_API_KEY`` or ``AA_TOKEN``.
    Constructing a client does no network I/O. Use it as a context manager or call
    :meth:`close`. Thread-safe: one client can serve many threads.

    Keyword-only TLS settings of the built-in transport: ``ssl_context=`` (an
    ``ssl.SSLContext``, e.g. trusting a private CA) or ``cert=`` (a client certificate for
    mTLS: a PEM path or ``(cert, key)``). Proxies come from ``HTTP(S)_PROXY`` / ``ALL_PROXY`` /
    ``NO_PROXY``. See docs/deployment.md.

    Beyond the official arguments (keyword-only): ``token`` may be a function returning the
    token, asked before each request and once more after a 401; ``default_headers`` go out
    with every request; ``event_hooks={"request": [f], "response": [g]}`` are called around
    every attempt with read-only views (see docs/deployment.md).
    """

    def __init__(
        self,
        token: str | Callable[[], str] | None = None,
        host: str | None = None,
        hosting: str | None = None,
        request_timeout_seconds: Timeout | float | None = DEFAULT_REQUEST_TIMEOUT,
        total_retries: int = 8,
        nice: bool = False,
        verify_ssl: bool = True,
        tags: Sequence[str] | None = None,
        pool_size: int = 10,
        *,
        limit: int | None = None,
        max_retry_after: float = 60.0,
        retry_read_timeouts: bool = False,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        stream_timeout: float | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        transport: SyncTransportProtocol | None = None,
        http_client: Any = None,
        ssl_context: ssl.SSLContext | None = None,
        cert: str | os.PathLike[str] | tuple[Any, Any] | None = None,
        default_headers: Mapping[str, str] | None = None,
        event_hooks: Mapping[str, Sequence[Callable[..., Any]]] | None = None,
    ) -> None:
        self._setup(
            make_config(
                token=token,
                host=host,
                hosting=hosting,
                request_timeout_seconds=request_timeout_seconds,
                total_retries=total_retries,
                nice=nice,
                verify_ssl=verify_ssl,
                tags=tags,
                max_retry_after=max_retry_after,
                retry_read_timeouts=retry_read_timeouts,
                max_event_size=max_event_size,
                default_headers=default_headers,
                event_hooks=event_hooks,
                sync=True,
                stream_timeout=stream_timeout,
                max_response_size=max_response_size,
            )
        )
        self._pool_size = limit if limit is not None else pool_size
        # A one-slot box: with_options() copies share it, so they share (and close) one pool.
        self._transport_box: list[Any] = [None]
        # Transports over requests/httpx, made while a mocking library is active (see _mocks).
        self._mock_transports: dict[str, Any] = {}
        self._user_transport: Any = check_transport(transport, http_client, sync=True)
        self._ssl_context, self._cert = check_tls(ssl_context, cert, self._user_transport)

    # ---------------------------------------------------------------- plumbing

    def _transport(self) -> Any:
        if self._user_transport is not None:
            return self._user_transport
        route = sync_route()
        if route != "default":
            return self._mock_transport(route)
        transport = self._transport_box[0]
        if transport is None:
            with _TRANSPORT_LOCK:
                return self._make_transport()
        return transport

    def _mock_transport(self, route: str) -> Any:
        transport = self._mock_transports.get(route)
        if transport is None:
            from ._compat_transport import sync_mock_transport

            with _TRANSPORT_LOCK:
                transport = self._mock_transports.get(route)
                if transport is None:
                    transport = sync_mock_transport(
                        route, verify_ssl=self._config.verify_ssl, pool_size=self._pool_size
                    )
                    self._mock_transports[route] = transport
        return transport

    def _make_transport(self) -> Any:
        transport = self._transport_box[0]
        if transport is None:
            transport = SyncTransport(
                pool_size=self._pool_size,
                verify_ssl=self._config.verify_ssl,
                host=self._config.host,
                ssl_context=self._ssl_context,
                cert=self._cert,
            )
            self._transport_box[0] = transport
        return transport

    def _send(self, request: HTTPRequest, attempt: int = 0) -> tuple[SyncResponse, int]:
        """One request with retries and redirects; a response with status < 300."""
        driver: AttemptDriver[SyncResponse] = AttemptDriver(request, self._config.retry, attempt)
        return self._drive(driver), driver.attempt

    def _drive(self, driver: AttemptDriver[SyncResponse]) -> SyncResponse:
        """Do what the attempt machine says (send, read, sleep) until it is done or raises.

        A token callable is asked first (and once more when the machine asks for a refresh
        after a 401); event hooks are called around each attempt.
        """
        config = self._config
        transport, timeout = self._transport(), config.timeout
        provider, hooks = config.token_provider, config.hooks
        if provider is not None:
            driver.authorize(ask_token_sync(provider))
        step: Step[SyncResponse] = driver.start()
        while True:
            if isinstance(step, Send):
                if hooks is not None:
                    event = run_request_hooks_sync(hooks, step.request, driver.attempt)
                try:
                    response = transport.send(step.request, timeout)
                except APIConnectionError as err:
                    step = driver.failed(err)
                else:
                    if hooks is not None:
                        run_response_hooks_sync(hooks, response, event)
                    step = driver.received(response)
            elif isinstance(step, Read):
                step = driver.read(step.response, step.response.read())
            elif isinstance(step, Sleep):
                time.sleep(step.seconds)
                step = driver.start()
            elif isinstance(step, Refresh):
                step = driver.refreshed(ask_token_sync(provider))
            elif isinstance(step, Done):
                return step.response
            else:
                raise step.error

    def _call(self, endpoint: ep.Endpoint[R], request: Any, model: str | None) -> R:
        http = build_request(
            self._config,
            self._headers,
            endpoint.path,
            request,
            model,
            request_type=endpoint.request_type,
        )
        result: R = self._traced(endpoint.path, model, request, http, endpoint.parse)
        return result

    def _traced(
        self, path: str, model: str | None, request: Any, http: HTTPRequest, parse: Any
    ) -> Any:
        """Send ``http`` and parse its JSON answer, in the span of one API call."""
        return self._observed(path, model, request, lambda: self._fetch_json(http, parse))

    def _observed(self, path: str, model: str | None, request: Any, fetch: Callable[[], T]) -> T:
        """``fetch()`` in the span of one API call to ``path`` (the model of a request that
        carries it, like a translation, named too)."""
        if model is None:
            model = getattr(request, "model", None)
        observer = _tracing.start(path, model, request, self._config.host)
        try:
            result = fetch()
        except BaseException as error:
            self._note_capabilities(error, model)
            if observer is not None:
                observer.fail(error)
            raise
        if observer is not None:
            observer.done(result)
        return result

    def _fetch_json(self, http: HTTPRequest, parse: Any) -> Any:
        response, attempt = self._send(http)
        try:
            body = response.read()
            data = parse_json(response.status, response.headers, body)
            return finish(parse_model(parse, data, response.status, body), response, attempt)
        except APIError as error:
            tag_error(error, response.headers)
            raise

    def _fetch_text(self, http: HTTPRequest) -> str:
        response, attempt = self._send(http)
        try:
            return finish(parse_text(response.status, response.read()), response, attempt)
        except APIError as error:
            tag_error(error, response.headers)
            raise

    def _stream(
        self, endpoint: ep.StreamingEndpoint[R, ItemT], request: Any, model: str
    ) -> Stream[ItemT, R]:
        http = build_request(
            self._config,
            self._headers,
            endpoint.path,
            request,
            model,
            stream=True,
            request_type=endpoint.request_type,
        )
        max_event_size = self._config.max_event_size

        def run(holder: _Holder[ItemT, R]) -> Generator[list[ItemT], None, None]:
            driver: AttemptDriver[SyncResponse] = AttemptDriver(http, self._config.retry)
            while True:
                try:
                    response = holder.response = self._drive(driver)
                except APIStatusError as status_error:
                    self._note_capabilities(status_error, model)
                    raise
                state = holder.state = endpoint.accumulator(request)
                processor = StreamProcessor(state, max_event_size)
                try:
                    if not is_event_stream(response.headers):
                        body = response.read()
                        raise stream_content_type_error(response.status, response.headers, body)
                    for data in response.iter_chunks():
                        batch = processor.feed(data)
                        if batch.items:
                            yield batch.items
                        if batch.error is not None:
                            raise batch.error
                    batch = processor.finish()
                    if batch.items:
                        yield batch.items
                    if batch.error is not None:
                        raise batch.error
                    return
                except (StreamEventError, IncompleteStreamError) as err:
                    tag_error(err, response.headers)
                    step = driver.stream_failed(err, state.started)
                except APIError as err:
                    tag_error(err, response.headers)
                    raise
                finally:
                    response.close()
                if isinstance(step, Raise):
                    raise step.error
                time.sleep(step.seconds)

        observer = _tracing.start_stream(endpoint.path, model, request, self._config.host)
        return Stream(run, observer)

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the connection pool (the client can still be used: it reconnects)."""
        transport = self._transport_box[0]
        if transport is not None:
            self._transport_box[0] = None
            transport.close()
        for route in list(self._mock_transports):
            transport = self._mock_transports.pop(route, None)  # a copy may close it too
            if transport is not None:
                transport.close()
        if self._user_transport is not None:
            self._user_transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def with_raw_response(self) -> WithRawResponse:
        """The API methods returning a :class:`RawResponse` (status, headers, request id):
        ``client.with_raw_response.chat(request, model)``; ``.parse()`` gives the answer."""
        return WithRawResponse(self)

    # ---------------------------------------------------------------- the API

    def get_version(self) -> str:
        """The API's version string (GET ``version``)."""
        http = self._get_version_request()
        return self._observed("version", None, None, lambda: self._fetch_text(http))

    def validate_version(self) -> None:
        """Raise RuntimeError unless the API version is supported."""
        check_version(self.get_version())

    def models(self) -> list[Mapping[str, Any]]:
        """The models the API serves (GET ``models_available``)."""
        http = self._models_request()
        result: list[Mapping[str, Any]] = self._observed(
            "models_available", None, None, lambda: self._fetch_json(http, as_list)
        )
        return result

    def model_settings(self) -> list[ModelSettings]:
        """What each model can do (GET ``model-settings``): chat, images, context size, ...

        The answer is also remembered: a later ``MISSING_CAPABILITY`` error of a model in it
        says what that model can do.
        """
        http = self._model_settings_request()
        settings: list[ModelSettings] = self._observed(
            "model-settings",
            None,
            None,
            lambda: self._fetch_json(http, ModelSettings.list_from_json),
        )
        return self._remember_settings(settings)

    def transcribe(
        self, audio: AudioInput, model: str, language: str | None = None
    ) -> TranscriptionResponse:
        """Transcribe an audio file (POST ``transcribe``, multipart).

        ``audio`` is a file path, the bytes, or a binary file object; ``language`` an
        optional ISO 639-1 code (``"de"``). The answer has the text, timed segments and
        the language.
        """
        http = self._transcribe_request(audio, model, language)
        result: TranscriptionResponse = self._observed(
            "transcribe",
            model,
            None,
            lambda: self._fetch_json(http, TranscriptionResponse.from_json),
        )
        return result

    def tokenizer(self, model: str) -> Any:
        """The model's tokenizer as a ``tokenizers.Tokenizer`` (extra ``tokenizers``)."""
        http = self._tokenizer_request(model)
        return make_tokenizer(
            self._observed("tokenizer", model, None, lambda: self._fetch_text(http))
        )

    def chat(self, request: ChatRequest, model: str) -> ChatResponse:
        """Send a chat request; the answer with usage, id and model."""
        return self._call(ep.CHAT, request, model)

    def chat_with_streaming(
        self, request: ChatRequest, model: str
    ) -> Stream[ChatStreamItem, ChatResponse]:
        """Stream a chat answer: ``ChatStreamChunk``, ``ReasoningChunk``, ``ToolCall``,
        ``FinishReason``, ``Usage``.

        Use as ``for item in client.chat_with_streaming(request, model)``; the stream also
        has ``text_stream`` and ``get_final_response()``.
        """
        return self._stream(ep.CHAT, request, model)

    def run_tools(
        self, request: ChatRequest, model: str, *, max_iterations: int = 8
    ) -> ToolRunResult:
        """Chat and run the tools the model calls until it answers without tool calls.

        Returns the final ``ChatResponse`` and the whole conversation. A tool that raises
        and an unknown tool name become tool messages with the error text; when the model
        still calls tools after ``max_iterations`` answers, :class:`ToolLoopLimitError`
        carries the conversation so far.
        """
        loop = ToolLoop(request, max_iterations)
        while True:
            response = self.chat(loop.next_request(), model)
            planned = loop.on_response(response)
            if planned is None:
                return loop.result(response)
            loop.add_results(run_planned_sync(loop, planned))

    def run_tools_with_streaming(
        self, request: ChatRequest, model: str, *, max_iterations: int = 8
    ) -> Iterator[ToolLoopEvent]:
        """``run_tools`` streamed: ``ChatStreamChunk`` text and ``ReasoningChunk`` thinking as
        they come (apart, as in ``chat_with_streaming``), each ``ToolCall``,
        each ``ToolResult``, and the ``ToolRunResult`` last."""
        loop = ToolLoop(request, max_iterations)
        while True:
            with self.chat_with_streaming(loop.next_request(), model) as stream:
                for item in stream:
                    if isinstance(item, (ToolCall, ReasoningChunk)) or (
                        isinstance(item, ChatStreamChunk) and item.content
                    ):
                        yield item
                response = stream.get_final_response()
            planned = loop.on_response(response)
            if planned is None:
                yield loop.result(response)
                return
            results = run_planned_sync(loop, planned)
            yield from results
            loop.add_results(results)

    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        """Complete a prompt."""
        return self._call(ep.COMPLETE, request, model)

    def complete_with_streaming(
        self, request: CompletionRequest, model: str
    ) -> Stream[CompletionResponseStreamItem, CompletionResponse]:
        """Stream a completion: ``StreamChunk``, ``StreamSummary``, ``CompletionSummary``."""
        return self._stream(ep.COMPLETE, request, model)

    def tokenize(self, request: TokenizationRequest, model: str) -> TokenizationResponse:
        """Tokenize a text."""
        return self._call(ep.TOKENIZE, request, model)

    def detokenize(self, request: DetokenizationRequest, model: str) -> DetokenizationResponse:
        """Turn token ids back into text."""
        return self._call(ep.DETOKENIZE, request, model)

    def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        """Embed a prompt with chosen layers and poolings."""
        return self._call(ep.EMBED, request, model)

    def embeddings(self, request: EmbeddingV2Request, model: str) -> EmbeddingV2Response:
        """OpenAI-compatible embeddings (POST ``embeddings``)."""
        return self._call(ep.EMBEDDINGS, request, model)

    def semantic_embed(
        self, request: SemanticEmbeddingRequest, model: str
    ) -> SemanticEmbeddingResponse:
        """A semantic embedding of one prompt."""
        return self._call(ep.SEMANTIC_EMBED, request, model)

    def batch_semantic_embed(
        self,
        request: BatchSemanticEmbeddingRequest,
        model: str | None = None,
        num_concurrent_requests: int = 1,
        batch_size: int = 100,
        progress_bar: bool = False,
    ) -> BatchSemanticEmbeddingResponse:
        """Semantic embeddings of many prompts, sent in batches of at most ``batch_size``.

        Batches run ``num_concurrent_requests`` at a time (threads); results keep the input
        order; a failing batch is named in the error's notes.
        """
        batches = ep.split_batches(request, batch_size, num_concurrent_requests)
        https = [
            build_request(
                self._config,
                self._headers,
                ep.BATCH_SEMANTIC_EMBED.path,
                batch,
                model,
                request_type=BatchSemanticEmbeddingRequest,
            )
            for batch in batches
        ]
        bar = make_progress_bar(progress_bar, len(https))

        def one(index: int) -> BatchSemanticEmbeddingResponse:
            try:
                result: BatchSemanticEmbeddingResponse = self._traced(
                    ep.BATCH_SEMANTIC_EMBED.path,
                    model,
                    batches[index],
                    https[index],
                    ep.BATCH_SEMANTIC_EMBED.parse,
                )
            except Exception as err:
                ep.note_batch(err, index, len(https), batch_size, len(request.prompts))
                raise
            if bar is not None:
                bar.update(1)
            return result

        try:
            if num_concurrent_requests == 1 or len(https) <= 1:
                results = [one(i) for i in range(len(https))]
            else:
                from concurrent.futures import ThreadPoolExecutor

                # each thread runs in a copy of the caller's context (its current span,
                # so trace context goes out with every batch)
                contexts = [contextvars.copy_context() for _ in https]
                with ThreadPoolExecutor(max_workers=num_concurrent_requests) as pool:
                    results = list(pool.map(lambda i: contexts[i].run(one, i), range(len(https))))
        finally:
            if bar is not None:
                bar.close()
        return ep.merge_batches(results)

    def instructable_embed(
        self, request: InstructableEmbeddingRequest, model: str
    ) -> InstructableEmbeddingResponse:
        """An embedding steered by an instruction."""
        return self._call(ep.INSTRUCTABLE_EMBED, request, model)

    def evaluate(self, request: EvaluationRequest, model: str) -> EvaluationResponse:
        """How likely the model finds an expected completion."""
        return self._call(ep.EVALUATE, request, model)

    def explain(self, request: ExplanationRequest, model: str) -> ExplanationResponse:
        """Which parts of the prompt explain a target completion."""
        return self._call(ep.EXPLAIN, request, model)

    def rerank(self, request: RerankRequest, model: str) -> RerankResponse:
        """Order documents by relevance to a query."""
        return self._call(ep.RERANK, request, model)

    def translate(self, request: TranslationRequest) -> TranslationResponse:
        """Translate a text (the model travels in the request)."""
        return self._call(ep.TRANSLATE, request, None)

    def create_steering_concept(
        self, request: SteeringConceptCreationRequest
    ) -> SteeringConceptCreationResponse:
        """Create a steering concept from paired examples; use its id in requests."""
        return self._call(ep.STEERING, request, None)
