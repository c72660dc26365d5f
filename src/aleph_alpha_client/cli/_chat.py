"""``aleph-alpha chat``: one-shot (streamed) and interactive chat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._app import EXIT_INTERRUPTED, EXIT_OK, App, UsageError

if TYPE_CHECKING:
    from .._client import Client
    from ..chat import ChatResponse, Message, TextMessage
    from ..prompt import Image
    from ..structured_output import JSONSchema

__all__ = ["run_chat"]

_HELP = "commands: /reset forgets the conversation, /exit quits (or Ctrl-D), /help shows this"


def _load_images(paths: list[str] | None) -> list[Image]:
    from ..prompt import Image

    images: list[Image] = []
    for path in paths or []:
        file = Path(path)
        if not file.is_file():
            reason = "is a directory" if file.is_dir() else "no such file"
            raise UsageError(f"--image {path}: {reason}")
        try:
            images.append(Image.from_file(file))
        except OSError as err:
            raise UsageError(f"--image {path}: cannot read it: {err.strerror or err}") from None
    return images


def _load_schema(path: str | None) -> JSONSchema | None:
    if path is None:
        return None
    from ..structured_output import JSONSchema

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--schema {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--schema {path}: cannot read it: {err}") from None
    try:
        schema = json.loads(text)
    except ValueError as err:
        raise UsageError(f"--schema {path}: not valid JSON: {err}") from None
    if not isinstance(schema, dict):
        raise UsageError(f"--schema {path}: a JSON schema must be a JSON object")
    name = schema.get("title")
    if not isinstance(name, str) or not name.strip():
        name = file.name.split(".", 1)[0] or "answer"
    # The API wants a name of letters, digits, '_' and '-'.
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in name.strip())[:64]
    description = schema.get("description")
    return JSONSchema(
        schema=schema,
        name=name,
        description=description if isinstance(description, str) else None,
        strict=True,
    )


def _load_tools(specs: list[str] | None) -> list[Any]:
    """The tools of ``--tool MODULE:FUNCTION`` options (the module imported from sys.path)."""
    import importlib
    import sys

    from ..tools import tool

    tools: list[Any] = []
    if specs and "" not in sys.path:
        sys.path.insert(0, "")  # a module next to the caller, as `python -m` would find it
    for spec in specs or []:
        module_name, _, attribute = spec.partition(":")
        if not module_name or not attribute:
            raise UsageError(f"--tool {spec}: expected MODULE:FUNCTION, e.g. weather:get_weather")
        try:
            module = importlib.import_module(module_name)
        except Exception as err:
            raise UsageError(f"--tool {spec}: cannot import {module_name}: {err}") from None
        target: Any = module
        for part in attribute.split("."):
            target = getattr(target, part, None)
            if target is None:
                raise UsageError(f"--tool {spec}: {module_name} has no {attribute}")
        try:
            tools.append(tool(target))
        except (TypeError, ValueError) as err:
            raise UsageError(f"--tool {spec}: {err}") from None
    return tools


def _response_json(response: ChatResponse) -> dict[str, Any]:
    return {
        "content": response.message.content,
        "finish_reason": None if response.finish_reason is None else response.finish_reason.value,
        "usage": None if response.usage is None else response.usage.to_json(),
        "tool_calls": [call.to_json() for call in response.tool_calls],
        "model": response.model,
        "id": response.id,
        "reasoning_content": response.message.reasoning_content,
    }


class _Chat:
    """The conversation and the output of its answers."""

    def __init__(self, app: App) -> None:
        from ..chat import Message, Role

        self.app = app
        self.client: Client | None = None
        args = app.args
        self.args = args
        self.images = _load_images(args.image)
        self.schema = _load_schema(args.schema)
        self.tools = _load_tools(getattr(args, "tool", None))
        self.stream = not (args.no_stream or args.json or self.schema is not None)
        self.system: list[Message | TextMessage] = []
        if args.system:
            self.system.append(Message(role=Role.System, content=args.system))
        self.history: list[Message | TextMessage] = []
        self.images_sent = False

    def reset(self) -> None:
        self.history.clear()
        self.images_sent = False

    def user_message(self, text: str) -> Message:
        from ..chat import Message, Role

        if self.images and not self.images_sent:
            self.images_sent = True
            return Message(role=Role.User, content=[text, *self.images])
        return Message(role=Role.User, content=text)

    def ask(self, text: str) -> ChatResponse:
        """Send ``text`` with the conversation; print the answer; keep both in the history."""
        from ..chat import ChatRequest, Message, Role, StreamOptions

        images_sent = self.images_sent
        message = self.user_message(text)
        messages = [*self.system, *self.history, message]
        args = self.args
        request = ChatRequest(
            model=args.model,
            messages=messages,
            maximum_tokens=args.max_tokens,
            temperature=args.temperature,
            response_format=self.schema,
            stream_options=StreamOptions(include_usage=True)
            if self.stream and args.usage
            else None,
            tools=self.tools or None,
            reasoning_effort=getattr(args, "reasoning_effort", None),
        )
        try:
            if self.tools:
                response, turn = self._send_with_tools(request)
            else:
                response = self._send(request)
                turn = [message, Message(role=Role.Assistant, content=response.content)]
        except BaseException:
            self.images_sent = images_sent
            raise
        self.history.extend(turn)
        self._after(response)
        return response

    def _send(self, request: Any) -> ChatResponse:
        app = self.app
        model = self.args.model
        client = self.client
        assert client is not None, "no client"
        if not self.stream:
            response = client.chat(request, model)
            self._print_whole(response)
            return response
        from ..chat import ChatStreamChunk, ReasoningChunk

        last = ""
        reasoning = _Reasoning(app, self.args)
        stream = client.chat_with_streaming(request, model)
        try:
            for item in stream:
                if isinstance(item, ReasoningChunk):
                    reasoning.write(item.content)
                elif isinstance(item, ChatStreamChunk) and item.content and item.index == 0:
                    reasoning.end()
                    app.stdout.write(item.content)
                    app.stdout.flush()
                    last = item.content
            final: ChatResponse = stream.get_final_response()
        except BaseException:
            reasoning.end()
            if last and not last.endswith("\n"):
                app.out("")
            raise
        finally:
            stream.close()
        reasoning.end()
        if not last.endswith("\n"):
            app.out("")
        return final

    def _send_with_tools(self, request: Any) -> tuple[ChatResponse, list[Any]]:
        """Run the tool loop; tool calls and results go to stderr, the answer to stdout."""
        from ..chat import ChatStreamChunk, ToolCall
        from ..tools import ToolResult, ToolRunResult

        app = self.app
        client = self.client
        assert client is not None, "no client"
        sent = len(request.messages) - 1  # the new user message starts this turn
        if not self.stream:
            result = client.run_tools(request, self.args.model)
            for message in result.messages[sent:]:
                for call in message.tool_calls or []:
                    app.info(f"[tool] {call.function.name}({call.function.arguments})")
            self._print_whole(result.response)
            return result.response, result.messages[sent:]
        last = "\n"
        final: ToolRunResult | None = None
        for event in client.run_tools_with_streaming(request, self.args.model):
            if isinstance(event, ChatStreamChunk):
                app.stdout.write(event.content)
                app.stdout.flush()
                last = event.content
            elif isinstance(event, ToolCall):
                app.info(f"[tool] {event.function.name}({event.function.arguments})")
            elif isinstance(event, ToolResult):
                app.info(f"[tool] -> {event.content}")
            elif isinstance(event, ToolRunResult):
                final = event
        if not last.endswith("\n"):
            app.out("")
        assert final is not None
        return final.response, final.messages[sent:]

    def _print_whole(self, response: ChatResponse) -> None:
        app = self.app
        if self.args.json:
            app.out(json.dumps(_response_json(response), ensure_ascii=False))
        elif self.schema is not None:
            try:
                value = json.loads(response.content)
            except ValueError:
                from .._exceptions import APIResponseValidationError

                app.out(response.content)
                raise APIResponseValidationError(
                    "the answer does not follow --schema: not JSON"
                ) from None
            app.out(json.dumps(value, indent=2, ensure_ascii=False))
        else:
            thinking = response.message.reasoning_content
            if thinking:
                reasoning = _Reasoning(app, self.args)
                reasoning.write(thinking)
                reasoning.end()
            content = response.content
            app.out(content, end="" if content.endswith("\n") else "\n")

    def _after(self, response: ChatResponse) -> None:
        from ..chat import FinishReason

        app = self.app
        if response.finish_reason == FinishReason.Length and not self.args.json:
            app.info("(the answer was cut at --max-tokens)")
        if self.args.usage:
            usage = response.usage
            if usage is None:
                app.info("usage: not reported by the API")
            else:
                app.info(
                    f"usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} "
                    f"completion = {usage.total_tokens} tokens"
                )


_DIM, _RESET = "\x1b[2m", "\x1b[0m"


class _Reasoning:
    """Shows a reasoning model's thinking: dimmed on a terminal, on stderr when stdout is not
    one (the answer stays alone on stdout), not at all with ``--no-reasoning``."""

    def __init__(self, app: App, args: Any) -> None:
        self.app = app
        self.hidden = bool(getattr(args, "no_reasoning", False))
        self.tty = _isatty(app.stdout)
        self.open = False
        self.last = ""

    def write(self, text: str) -> None:
        if self.hidden or not text:
            return
        out = self.app.stdout if self.tty else self.app.stderr
        if not self.open:
            self.open = True
            if self.tty:
                out.write(_DIM)
        out.write(text)
        out.flush()
        self.last = text

    def end(self) -> None:
        if not self.open:
            return
        self.open = False
        out = self.app.stdout if self.tty else self.app.stderr
        out.write((_RESET if self.tty else "") + ("" if self.last.endswith("\n") else "\n"))
        out.flush()


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


def _read_line(app: App, tty: bool) -> str | None:
    """The next line typed (None at end of input). Ctrl-C propagates."""
    if tty:
        prompt = "> "
        if not _isatty(app.stdout):  # keep stdout for answers only: the prompt goes to stderr
            app.stderr.write(prompt)
            app.stderr.flush()
            prompt = ""
        try:
            return input(prompt)
        except EOFError:
            return None
    stdin = app.stdin
    if stdin is None:
        return None
    line = stdin.readline()
    if not line:
        return None
    return line.rstrip("\r\n")


def _enable_line_editing() -> None:
    try:
        import readline  # noqa: F401  (input() gets history and editing)
    except ImportError:  # pragma: no cover - Windows without pyreadline
        pass


def _interactive(app: App, chat: _Chat, first: str | None) -> int:
    tty = app.stdin_is_tty()
    if tty:
        _enable_line_editing()
        app.info(f"Chatting with {chat.args.model}. {_HELP}.")
    status = EXIT_OK
    pending = first
    while True:
        if pending is not None:
            line: str | None = pending
            pending = None
        else:
            try:
                line = _read_line(app, tty)
            except KeyboardInterrupt:
                app.info("")
                return EXIT_INTERRUPTED
        if line is None:
            if tty:
                app.info("")
            return status
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            command = text.split()[0].lower()
            if command in ("/exit", "/quit", "/q"):
                return status
            if command == "/reset":
                chat.reset()
                app.info("(conversation reset)")
                continue
            if command in ("/help", "/?"):
                app.info(_HELP)
                continue
            if not text.startswith("//"):
                app.info(f"unknown command {command}; {_HELP} (start a message with // for /)")
                continue
            text = text[1:]
        try:
            chat.ask(text)
        except KeyboardInterrupt:
            app.info("(answer interrupted; not kept in the conversation)")
        except Exception as err:  # one failed turn does not end the chat
            code = app.error(err)
            status = status or code


def run_chat(app: App) -> int:
    """The ``chat`` command."""
    args = app.args
    prompt: str | None = args.prompt
    interactive = bool(args.interactive) or (prompt is None and app.stdin_is_tty())
    if prompt == "-" or (prompt is None and not interactive):
        prompt = app.read_stdin("prompt")
    if prompt is not None and not prompt.strip() and not interactive:
        raise UsageError("the prompt is empty")
    chat = _Chat(app)  # reads --image and --schema files before any connection
    with app.client() as client:
        chat.client = client
        if interactive:
            return _interactive(app, chat, prompt)
        assert prompt is not None
        chat.ask(prompt)
    return EXIT_OK
