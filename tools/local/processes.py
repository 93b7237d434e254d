"""Processes `make local` starts: free ports, start and stop by PID (recorded for `make local-down`)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class LocalError(Exception):
    """A step failed; the message says which and what to do."""


def ensure_free(port: int, what: str, variable: str) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise LocalError(f"Port {port} for the {what} is in use; free it or set {variable}=<port>.")


# Each port of `make local` and the variable that moves it.
PORT_VARIABLES = {"emulator": "LOCAL_EMULATOR_PORT", "model": "LOCAL_MODEL_PORT", "api": "LOCAL_API_PORT",
                  "embedding": "LOCAL_EMBEDDING_PORT", "web": "LOCAL_WEB_PORT"}  # fmt: skip


@dataclass(frozen=True)
class Ports:
    emulator: int = 5000
    model: int = 8081
    api: int = 8080
    embedding: int = 8082
    web: int = 3000

    @classmethod
    def from_environment(cls) -> Ports:
        values = {}
        for name, variable in PORT_VARIABLES.items():
            raw = os.environ.get(variable)
            if raw is not None:
                if not raw.isdigit() or not 1024 <= int(raw) <= 65535:
                    raise LocalError(f"{variable} must be a port number from 1024 to 65535 (got {raw!r}).")
                values[name] = int(raw)
        ports = cls(**values)
        if len({ports.emulator, ports.model, ports.api, ports.embedding, ports.web}) < len(PORT_VARIABLES):
            raise LocalError(f"{', '.join(PORT_VARIABLES.values())} must differ (got {ports}).")
        return ports

    @classmethod
    def free(cls) -> Ports:
        """Ports nothing listens on now (tests and benchmarks beside a running `make local`)."""
        probes = [socket.socket() for _ in PORT_VARIABLES]
        try:  # held open together, so no two are the same
            for probe in probes:
                probe.bind(("127.0.0.1", 0))
            return cls(
                **{name: int(probe.getsockname()[1]) for name, probe in zip(PORT_VARIABLES, probes, strict=True)}
            )
        finally:
            for probe in probes:
                probe.close()


@dataclass
class Processes:
    """Processes this run started, by PID, also written to <state>/pids for `down`."""

    state: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.state.mkdir(parents=True, exist_ok=True)
        log = (self.state / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own tools with fixed arguments
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(process)
        with self.pids.open("a") as pids:
            pids.write(f"{process.pid} {name}\n")
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            _terminate(process.pid)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _terminate(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self.started:  # only this run's record
            self.pids.unlink(missing_ok=True)
        self.started.clear()


def _terminate(pid: int, signum: int = signal.SIGTERM) -> None:
    """Signal the process group a recorded process leads (each was started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def wait_for(url: str, process: subprocess.Popen[bytes], name: str, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalError(f"The {name} exited with code {process.returncode}; see {log}.")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - 127.0.0.1 only
                return
        except urllib.error.HTTPError as error:
            if error.code != HTTPStatus.SERVICE_UNAVAILABLE:  # the model server while its model loads
                return  # it answers (an auth error from the model server is an answer)
        except OSError:
            pass
        time.sleep(0.2)
    raise LocalError(f"The {name} did not answer at {url} within {seconds:.0f} s; see {log}.")


def down(state: Path) -> None:
    """Stop every process recorded by runs under `state` (`make local` and the e2e tests)."""
    records = sorted(state.rglob("pids")) if state.is_dir() else []
    if not records:
        print("Nothing to stop.")
        return
    for record in records:
        for line in record.read_text().splitlines():
            pid, name = line.split(maxsplit=1)
            _terminate(int(pid))
            print(f"stopped {name} (pid {pid})")
        record.unlink()
