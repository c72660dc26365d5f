"""The asynchronous client: a thin shell that sends and sleeps (our own HTTP/1.1 client on asyncio underneath: _async_http)."""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
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
    ask_token_async,
    run_request_hooks_async,
    run_response_hooks_async,
)
from ._mocks import async_route
from ._raw import AsyncWithRawResponse, finish, tag_error
from ._request import HTTPRequest
from ._streaming import (
    AsyncStream,
    StreamProcessor,
    _Holder,
)
from ._transport import AsyncResponse, AsyncTransport, check_tls, check_transport
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
from .tools import ToolLoop, ToolLoopEvent, ToolRunResult, run_planned_async
from .transcription import AudioInput, TranscriptionResponse
from .translation import TranslationRequest, TranslationResponse
from .transport import AsyncTransportProtocol

__all__ = ["AsyncClient"]

#: Guards the first creation of a client's transport (loops in several threads).
_TRANSPORT_LOCK = threading.Lock()

R = TypeVar("R")
ItemT = TypeVar("ItemT")
T = TypeVar("T")
ChatStreamItem = (
    ChatStreamChunk | ReasoningChunk | ToolCall | FinishReason | ChoiceFinishReason | Usage
)


class AsyncClient(BaseClient):
    """The asynchronous client of the Aleph Alpha API (the same methods as :class:`Client`).

    It can be built outside a running event loop; use ``async with AsyncClient(...)`` (it can
    be entered again after it was left) or ``await client.close()``. Constructing a client
    does no network I/O. ``ssl_context=`` and ``cert=`` (keyword-only) as on :class:`Client`.
    One client may serve several event loops in several threads at
    once (each loop gets its own connections).

    ``token`` may be a plain or ``async`` function returning the token, asked before each
    request and once more after a 401; ``default_headers`` and ``event_hooks`` (plain or
    ``async`` functions) as on :class:`Client`.
    """

    def __init__(
        self,
        token: str | Callable[[], str | Awaitable[str]] | None = None,
        host: str | None = None,
        limit: int = 100,
        hosting: str | None = None,
        request_timeout_seconds: Timeout | float | None = DEFAULT_REQUEST_TIMEOUT,
        total_retries: int = 8,
        nice: bool = False,
        verify_ssl: bool = True,
        tags: Sequence[str] | None = None,
        *,
        pool_size: int | None = None,
        max_retry_after: float = 60.0,
        retry_read_timeouts: bool = False,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        stream_timeout: float | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        transport: AsyncTransportProtocol | None = None,
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
                sync=False,
                stream_timeout=stream_timeout,
                max_response_size=max_response_size,
            )
        )
        self._limit = pool_size if pool_size is not None else limit
        # A one-slot box: with_options() copies share it, so they share (and close) one pool.
        self._transport_box: list[Any] = [None]
        # Transports over aiohttp/httpx/requests, made while a mocking library is active.
        self._mock_transports: dict[str, Any] = {}
        self._user_transport: Any = check_transport(transport, http_client, sync=False)
        self._ssl_context, self._cert = check_tls(ssl_context, cert, self._user_transport)

    # ---------------------------------------------------------------- plumbing

    def _transport(self) -> Any:
        if self._user_transport is not None:
            return self._user_transport
        route = async_route()
        if route != "default":
            return self._mock_transport(route)
        transport = self._transport_box[0]
        if transport is None:
            # threads running their own loops may make their first call at once
            with _TRANSPORT_LOCK:
                transport = self._transport_box[0]
                if transport is None:
                    transport = AsyncTransport(
                        limit=self._limit,
                        verify_ssl=self._config.verify_ssl,
                        host=self._config.host,
                        ssl_context=self._ssl_context,
                        cert=self._cert,
                    )
                    self._transport_box[0] = transport
        return transport

    def _mock_transport(self, route: str) -> Any:
        transport = self._mock_transports.get(route)
        if transport is None:
            from ._compat_transport import AiohttpTransport, AsyncHttpxTransport, ThreadedTransport

            verify = self._config.verify_ssl
            with _TRANSPORT_LOCK:
                transport = self._mock_transports.get(route)
                if transport is None:
                    if route == "aiohttp":
                        transport = AiohttpTransport(verify_ssl=verify, limit=self._limit)
                    elif route == "httpx":
                        transport = AsyncHttpxTransport(verify_ssl=verify)
                    else:
                        transport = ThreadedTransport(verify_ssl=verify, pool_size=self._limit)
                    self._mock_transports[route] = transport
        return transport

    async def _send(self, request: HTTPRequest, attempt: int = 0) -> tuple[AsyncResponse, int]:
        """One request with retries and redirects; a response with status < 300."""
        driver: AttemptDriver[AsyncResponse] = AttemptDriver(request, self._config.retry, attempt)
        return await self._drive(driver), driver.attempt

    async def _drive(self, driver: AttemptDriver[AsyncResponse]) -> AsyncResponse:
        """Do what the attempt machine says (send, read, sleep) until it is done or raises.

        A token callable is asked first (and once more when the machine asks for a refresh
        after a 401); event hooks are called around each attempt.
        """
        config = self._config
        transport, timeout = self._transport(), config.timeout
        provider, hooks = config.token_provider, config.hooks
        if provider is not None:
            driver.authorize(await ask_token_async(provider))
        step: Step[AsyncResponse] = driver.start()
        while True:
            if isinstance(step, Send):
                if hooks is not None:
                    event = await run_request_hooks_async(hooks, step.request, driver.attempt)
                try:
                    response = await transport.send(step.request, timeout)
                except APIConnectionError as err:
                    step = driver.failed(err)
                else:
                    if hooks is not None:
                        await run_response_hooks_async(hooks, response, event)
                    step = driver.received(response)
            elif isinstance(step, Read):
                step = driver.read(step.response, await step.response.read())
            elif isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                step = driver.start()
            elif isinstance(step, Refresh):
                step = driver.refreshed(await ask_token_async(provider))
            elif isinstance(step, Done):
                return step.response
            else:
                raise step.error

    async def _call(self, endpoint: ep.Endpoint[R], request: Any, model: str | None) -> R:
        http = build_request(
            self._config,
            self._headers,
            endpoint.path,
            request,
            model,
            request_type=endpoint.request_type,
        )
        result: R = await self._traced(endpoint.path, model, request, http, endpoint.parse)
        return result

    async def _traced(
        self, path: str, model: str | None, request: Any, http: HTTPRequest, parse: Any
    ) -> Any:
        """Send ``http`` and parse its JSON answer, in the span of one API call."""
        return await self._observed(path, model, request, self._fetch_json(http, parse))

    async def _observed(self, path: str, model: str | None, request: Any, fetch: Awaitable[T]) -> T:
        """``await fetch`` in the span of one API call to ``path`` (the model of a request
        that carries it, like a translation, named too)."""
        if model is None:
            model = getattr(request, "model", None)
        observer = _tracing.start(path, model, request, self._config.host)
        try:
            result = await fetch
        except BaseException as error:
            self._note_capabilities(error, model)
            if observer is not None:
                observer.fail(error)
            raise
        if observer is not None:
            observer.done(result)
        return result

    async def _fetch_json(self, http: HTTPRequest, parse: Any) -> Any:
        response, attempt = await self._send(http)
        try:
            body = await response.read()
            data = parse_json(response.status, response.headers, body)
            return finish(parse_model(parse, data, response.status, body), response, attempt)
        except APIError as error:
            tag_error(error, response.headers)
            raise

    async def _fetch_text(self, http: HTTPRequest) -> str:
        response, attempt = await self._send(http)
        try:
            return finish(parse_text(response.status, await response.read()), response, attempt)
        except APIError as error:
            tag_error(error, response.headers)
            raise

    def _stream(
        self, endpoint: ep.StreamingEndpoint[R, ItemT], request: Any, model: str
    ) -> AsyncStream[ItemT, R]:
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

        async def run(holder: _Holder[ItemT, R]) -> AsyncGenerator[list[ItemT], None]:
            driver: AttemptDriver[AsyncResponse] = AttemptDriver(http, self._config.retry)
            while True:
                try:
                    response = holder.response = await self._drive(driver)
                except APIStatusError as status_error:
                    self._note_capabilities(status_error, model)
                    raise
                state = holder.state = endpoint.accumulator(request)
                processor = StreamProcessor(state, max_event_size)
                try:
                    if not is_event_stream(response.headers):
                        body = await response.read()
                        raise stream_content_type_error(response.status, response.headers, body)
                    async for data in response.iter_chunks():
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
                await asyncio.sleep(step.seconds)

        observer = _tracing.start_stream(endpoint.path, model, request, self._config.host)
        return AsyncStream(run, observer)

    # ---------------------------------------------------------------- lifecycle

    async def close(self) -> None:
        """Close the session (the client can still be used: it reconnects)."""
        transport = self._transport_box[0]
        if transport is not None:
            self._transport_box[0] = None
            await transport.close()
        for route in list(self._mock_transports):
            mock_transport = self._mock_transports[route]
            # one that serves several loops stays: it closes only this loop's part
            if not getattr(mock_transport, "per_loop", False):
                self._mock_transports.pop(route, None)
            await mock_transport.close()
        if self._user_transport is not None:
            await self._user_transport.close()

    def __enter__(self) -> None:
        raise TypeError("Use async with instead")

    def __exit__(self, *exc_info: object) -> None:  # pragma: no cover - never entered
        pass

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def with_raw_response(self) -> AsyncWithRawResponse:
        """The API methods returning a :class:`RawResponse` (status, headers, request id):
        ``await client.with_raw_response.chat(request, model)``; ``.parse()`` gives the answer."""
        return AsyncWithRawResponse(self)

    # ---------------------------------------------------------------- the API

    async def get_version(self) -> str:
        """The API's version string (GET ``version``)."""
        http = self._get_version_request()
        return await self._observed("version", None, None, self._fetch_text(http))

    async def validate_version(self) -> None:
        """Raise RuntimeError unless the API version is supported."""
        check_version(await self.get_version())

    async def models(self) -> list[Mapping[str, Any]]:
        """The models the API serves (GET ``models_available``)."""
        http = self._models_request()
        result: list[Mapping[str, Any]] = await self._observed(
            "models_available", None, None, self._fetch_json(http, as_list)
        )
        return result

    async def model_settings(self) -> list[ModelSettings]:
        """What each model can do (GET ``model-settings``): chat, images, context size, ...

        The answer is also remembered: a later ``MISSING_CAPABILITY`` error of a model in it
        says what that model can do.
        """
        http = self._model_settings_request()
        settings: list[ModelSettings] = await self._observed(
            "model-settings", None, None, self._fetch_json(http, ModelSettings.list_from_json)
        )
        return self._remember_settings(settings)

    async def transcribe(
        self, audio: AudioInput, model: str, language: str | None = None
    ) -> TranscriptionResponse:
        """Transcribe an audio file (POST ``transcribe``, multipart).

        ``audio`` is a file path, the bytes, or a binary file object; ``language`` an
        optional ISO 639-1 code (``"de"``). The answer has the text, timed segments and
        the language.
        """
        http = self._transcribe_request(audio, model, language)
        result: TranscriptionResponse = await self._observed(
            "transcribe", model, None, self._fetch_json(http, TranscriptionResponse.from_json)
        )
        return result

    async def tokenizer(self, model: str) -> Any:
        """The model's tokenizer as a ``tokenizers.Tokenizer`` (extra ``tokenizers``)."""
        http = self._tokenizer_request(model)
        text = await self._observed("tokenizer", model, None, self._fetch_text(http))
        return make_tokenizer(text)

    async def chat(self, request: ChatRequest, model: str) -> ChatResponse:
        """Send a chat request; the answer with usage, id and model."""
        return await self._call(ep.CHAT, request, model)

    def chat_with_streaming(
        self, request: ChatRequest, model: str
    ) -> AsyncStream[ChatStreamItem, ChatResponse]:
        """Stream a chat answer: ``ChatStreamChunk``, ``ReasoningChunk``, ``ToolCall``,
        ``FinishReason``, ``Usage``.

        Use as ``async for item in client.chat_with_streaming(request, model)`` (no
        ``await``); the stream also has ``text_stream`` and ``await get_final_response()``.
        """
        return self._stream(ep.CHAT, request, model)

    async def run_tools(
        self, request: ChatRequest, model: str, *, max_iterations: int = 8
    ) -> ToolRunResult:
        """Chat and run the tools the model calls until it answers without tool calls.

        Tools may be sync (run in worker threads) or async; the calls of one turn run
        concurrently. Returns the final ``ChatResponse`` and the whole conversation. A tool
        that raises and an unknown tool name become tool messages with the error text; when
        the model still calls tools after ``max_iterations`` answers,
        :class:`ToolLoopLimitError` carries the conversation so far.
        """
        loop = ToolLoop(request, max_iterations)
        while True:
            response = await self.chat(loop.next_request(), model)
            planned = loop.on_response(response)
            if planned is None:
                return loop.result(response)
            loop.add_results(await run_planned_async(loop, planned))

    async def run_tools_with_streaming(
        self, request: ChatRequest, model: str, *, max_iterations: int = 8
    ) -> AsyncIterator[ToolLoopEvent]:
        """``run_tools`` streamed: ``ChatStreamChunk`` text and ``ReasoningChunk`` thinking as
        they come (apart, as in ``chat_with_streaming``), each ``ToolCall``,
        each ``ToolResult``, and the ``ToolRunResult`` last (``async for``, no ``await``)."""
        loop = ToolLoop(request, max_iterations)
        while True:
            async with self.chat_with_streaming(loop.next_request(), model) as stream:
                async for item in stream:
                    if isinstance(item, (ToolCall, ReasoningChunk)) or (
                        isinstance(item, ChatStreamChunk) and item.content
                    ):
                        yield item
                response = await stream.get_final_response()
            planned = loop.on_response(response)
            if planned is None:
                yield loop.result(response)
                return
            results = await run_planned_async(loop, planned)
            for result in results:
                yield result
            loop.add_results(results)

    async def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        """Complete a prompt."""
        return await self._call(ep.COMPLETE, request, model)

    def complete_with_streaming(
        self, request: CompletionRequest, model: str
    ) -> AsyncStream[CompletionResponseStreamItem, CompletionResponse]:
        """Stream a completion: ``StreamChunk``, ``StreamSummary``, ``CompletionSummary``."""
        return self._stream(ep.COMPLETE, request, model)

    async def tokenize(self, request: TokenizationRequest, model: str) -> TokenizationResponse:
        """Tokenize a text."""
        return await self._call(ep.TOKENIZE, request, model)

    async def detokenize(
        self, request: DetokenizationRequest, model: str
    ) -> DetokenizationResponse:
        """Turn token ids back into text."""
        return await self._call(ep.DETOKENIZE, request, model)

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        """Embed a prompt with chosen layers and poolings."""
        return await self._call(ep.EMBED, request, model)

    async def embeddings(self, request: EmbeddingV2Request, model: str) -> EmbeddingV2Response:
        """OpenAI-compatible embeddings (POST ``embeddings``)."""
        return await self._call(ep.EMBEDDINGS, request, model)

    async def semantic_embed(
        self, request: SemanticEmbeddingRequest, model: str
    ) -> SemanticEmbeddingResponse:
        """A semantic embedding of one prompt."""
        return await self._call(ep.SEMANTIC_EMBED, request, model)

    async def batch_semantic_embed(
        self,
        request: BatchSemanticEmbeddingRequest,
        model: str | None = None,
        num_concurrent_requests: int = 1,
        batch_size: int = 100,
        progress_bar: bool = False,
    ) -> BatchSemanticEmbeddingResponse:
        """Semantic embeddings of many prompts, sent in batches of at most ``batch_size``.

        Batches run ``num_concurrent_requests`` at a time; results keep the input order; a
        failing batch is named in the error's notes.
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
        gate = asyncio.Semaphore(num_concurrent_requests)

        async def one(index: int) -> BatchSemanticEmbeddingResponse:
            async with gate:
                try:
                    result: BatchSemanticEmbeddingResponse = await self._traced(
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

        tasks = [asyncio.ensure_future(one(i)) for i in range(len(https))]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            if bar is not None:
                bar.close()
        return ep.merge_batches(results)

    async def instructable_embed(
        self, request: InstructableEmbeddingRequest, model: str
    ) -> InstructableEmbeddingResponse:
        """An embedding steered by an instruction."""
        return await self._call(ep.INSTRUCTABLE_EMBED, request, model)

    async def evaluate(self, request: EvaluationRequest, model: str) -> EvaluationResponse:
        """How likely the model finds an expected completion."""
        return await self._call(ep.EVALUATE, request, model)

    async def explain(self, request: ExplanationRequest, model: str) -> ExplanationResponse:
        """Which parts of the prompt explain a target completion."""
        return await self._call(ep.EXPLAIN, request, model)

    async def rerank(self, request: RerankRequest, model: str) -> RerankResponse:
        """Order documents by relevance to a query."""
        return await self._call(ep.RERANK, request, model)

    async def translate(self, request: TranslationRequest) -> TranslationResponse:
        """Translate a text (the model travels in the request)."""
        return await self._call(ep.TRANSLATE, request, None)

    async def create_steering_concept(
        self, request: SteeringConceptCreationRequest
    ) -> SteeringConceptCreationResponse:
        """Create a steering concept from paired examples; use its id in requests."""
        return await self._call(ep.STEERING, request, None)
