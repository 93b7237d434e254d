"""One local platform per session: emulator, the dev stage deployed with the pinned CDK CLI, the real model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.local.launcher import STATE, LocalPlatform
from tools.local.processes import Ports


@pytest.fixture(scope="session")
def platform() -> Iterator[LocalPlatform]:
    # Fresh ports and its own state folder, so a `make local` running beside the tests is left alone.
    ports = Ports.free()
    started = LocalPlatform(ports=ports, state=STATE / "e2e")
    try:
        started.start()
        yield started
    finally:
        started.stop()
