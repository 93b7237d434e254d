"""One local platform per session: emulator, the dev stage deployed with the pinned CDK CLI, the real model."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tools.local import STATE, LocalPlatform, Ports


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def platform() -> Iterator[LocalPlatform]:
    # Fresh ports and its own state folder, so a `make local` running beside the tests is left alone.
    ports = Ports(emulator=_free_port(), model=_free_port(), api=_free_port())
    started = LocalPlatform(ports=ports, state=STATE / "e2e")
    try:
        started.start()
        yield started
    finally:
        started.stop()
