"""``python -m aleph_alpha_client.emulator``: serve the emulator until Ctrl-C."""

from __future__ import annotations

import argparse

from .handlers import DEFAULT_VERSION
from .server import run_server


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the server."""
    parser = argparse.ArgumentParser(
        prog="python -m aleph_alpha_client.emulator",
        description="Serve an offline emulator of the Aleph Alpha API on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument(
        "--faults", default=None, help='fault spec, e.g. "503:0.1,reset:0.05,latency=0.2"'
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--stream-latency", type=float, default=0.0)
    parser.add_argument("--randomness", action="store_true", help="random ids and timestamps")
    parser.add_argument("--api-version", default=DEFAULT_VERSION)
    args = parser.parse_args(argv)
    run_server(
        args.host,
        args.port,
        token=args.token,
        faults=args.faults,
        seed=args.seed,
        latency=args.latency,
        stream_latency=args.stream_latency,
        randomness=args.randomness,
        version=args.api_version,
    )


if __name__ == "__main__":
    main()
