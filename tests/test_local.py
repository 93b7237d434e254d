"""`make local`'s plumbing that needs no emulator: ports, busy ports, cleanup of a killed run."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tools import local
from tools.local import LocalError, Ports


def test_ports_come_from_the_environment_and_bad_values_name_the_variable(monkeypatch):
    monkeypatch.setenv("LOCAL_API_PORT", "9090")
    assert Ports.from_environment() == Ports(emulator=5000, model=8081, api=9090)
    monkeypatch.setenv("LOCAL_MODEL_PORT", "80")
    with pytest.raises(LocalError, match=r"LOCAL_MODEL_PORT must be a port number from 1024 to 65535 \(got '80'\)"):
        Ports.from_environment()
    monkeypatch.setenv("LOCAL_MODEL_PORT", "9090")
    with pytest.raises(LocalError, match="LOCAL_EMULATOR_PORT, LOCAL_MODEL_PORT and LOCAL_API_PORT must differ"):
        Ports.from_environment()


def test_a_busy_port_is_reported_with_the_variable_to_set():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LocalError, match=f"Port {port} for the model server is in use; .*LOCAL_MODEL_PORT"):
            local.ensure_free(port, "model server", "LOCAL_MODEL_PORT")


def test_down_stops_what_a_killed_run_recorded(tmp_path, capsys):
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    (tmp_path / "e2e").mkdir()
    (tmp_path / "e2e" / "pids").write_text(f"{orphan.pid} model\n")  # a killed e2e run's record
    local.down(tmp_path)
    assert orphan.wait(timeout=10) != 0
    assert not (tmp_path / "e2e" / "pids").exists()
    assert f"stopped model (pid {orphan.pid})" in capsys.readouterr().out
    local.down(tmp_path)
    assert "Nothing to stop." in capsys.readouterr().out
