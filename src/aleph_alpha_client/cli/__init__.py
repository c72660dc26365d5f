"""The ``aleph-alpha`` command line: chat, complete, embed, tokenize, models, transcribe, serve.

Installed as the ``aleph-alpha`` script and runnable as ``python -m aleph_alpha_client``::

    aleph-alpha chat --emulator "What is the capital of Spain?"
    aleph-alpha chat                      # interactive: /reset, /exit
    aleph-alpha complete "An apple a day" --max-tokens 20
    aleph-alpha embed "hello" "hi"        # summary, or --json for the vectors
    aleph-alpha tokenize "Hello world"    # --detokenize IDS, or the detokenize command
    aleph-alpha models                    # model-settings (or models_available)
    aleph-alpha transcribe talk.mp3 --language de
    aleph-alpha batch requests.jsonl -o results.jsonl --resume --concurrency 32
    aleph-alpha serve --port 8000 --faults "503:0.1"

Global options (before or after the command): ``--host URL`` and ``--token TOKEN`` (or
``ALEPH_ALPHA_BASE_URL``, ``ALEPH_ALPHA_API_KEY`` / ``AA_TOKEN``), ``--emulator`` (an
in-process offline emulator, no token or network), ``--timeout SECONDS``, ``--retries N``.

Results go to stdout, progress and errors to stderr; an error is one line. Exit status: 0 ok,
1 API or connection error, 2 usage error, 130 interrupted. Only the standard library's
``argparse`` is used; this package is not imported by ``import aleph_alpha_client``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from ._app import EXIT_API, EXIT_INTERRUPTED, App
from ._parser import GLOBAL_DEFAULTS, build_parser

__all__ = ["main"]


def _dispatch(command: str) -> Callable[[App], int]:
    if command == "chat":
        from ._chat import run_chat

        return run_chat
    if command == "batch":
        from ._batch import run_batch_command

        return run_batch_command
    from . import _commands

    handler: Callable[[App], int] = getattr(_commands, f"run_{command}")
    return handler


def _quiet_broken_pipe() -> None:
    """stdout's reader went away (``| head``): stop writing without a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aleph-alpha`` command with ``argv`` (default ``sys.argv[1:]``); the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exit_:  # --help, --version, usage errors (status 2)
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    for name, default in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    command = getattr(args, "command", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    app = App(args)
    try:
        return _dispatch(command)(app)
    except KeyboardInterrupt:
        print("", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_broken_pipe()
        return EXIT_API
    except Exception as err:
        if os.environ.get("ALEPH_ALPHA_LOG", "").strip().lower() == "debug":
            import traceback

            traceback.print_exc(file=sys.stderr)
        return app.error(err)
