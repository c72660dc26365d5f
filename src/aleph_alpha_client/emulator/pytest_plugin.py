"""pytest fixtures for the Aleph Alpha emulator (registered through the ``pytest11`` entry point).

Fixtures:

* ``aleph_alpha_emulator`` (function scope): a fresh, running :class:`~.server.Emulator` per
  test, stopped afterwards. Configure it with the marker
  ``@pytest.mark.aleph_alpha_emulator(token="secret", faults="503:0.5", ...)`` (keyword
  arguments of ``Emulator``).
* ``aleph_alpha_emulator_session`` (session scope): one shared emulator for the whole run.
  Faults and the request log are *not* reset for you; prefer the function fixture unless
  start-up cost matters, or call ``reset()`` yourself.
* ``aleph_alpha_emulator_factory`` (function scope): ``factory(**kwargs) -> Emulator``
  starts further emulators, all stopped at teardown.

The module imports only pytest and typing; the emulator is imported when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import Emulator

__all__ = [
    "aleph_alpha_emulator",
    "aleph_alpha_emulator_factory",
    "aleph_alpha_emulator_session",
]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``aleph_alpha_emulator`` marker."""
    config.addinivalue_line(
        "markers",
        "aleph_alpha_emulator(**kwargs): keyword arguments for the aleph_alpha_emulator "
        "fixture's Emulator (token=, faults=, latency=, randomness=, ...)",
    )


@pytest.fixture
def aleph_alpha_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with ``factory(**Emulator kwargs)``; all are stopped at teardown."""
    from .server import Emulator

    started: list[Emulator] = []

    def factory(**kwargs: Any) -> Emulator:
        emulator = Emulator(**kwargs).start()
        started.append(emulator)
        return emulator

    try:
        yield factory
    finally:
        for emulator in reversed(started):
            emulator.stop()


@pytest.fixture
def aleph_alpha_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A fresh running emulator for one test (configurable with the marker of the same name)."""
    from .server import Emulator

    kwargs: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("aleph_alpha_emulator"))):
        kwargs.update(marker.kwargs)
    with Emulator(**kwargs) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def aleph_alpha_emulator_session() -> Iterator[Emulator]:
    """One running emulator shared by the whole test session."""
    from .server import Emulator

    with Emulator() as emulator:
        yield emulator
