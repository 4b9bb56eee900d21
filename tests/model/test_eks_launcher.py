"""The eks launcher, run for real as the container runs it: `python3 -c <shipped source> host port command...`.

A stand-in for torchrun (a Python one-liner) records its arguments, exits with a chosen code or waits for a
signal; the rendezvous host is a real listening socket on 127.0.0.1, or a port nothing listens on.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainstack.model import eks_request as E
from trainstack.model.eks_launcher import IS_HOST, LOST_HOST_EXIT


def fake_torchrun(out: Path, exit_code: int = 0, wait_for_signal: bool = False) -> list[str]:
    """A command that writes its argv (and a signal it received) to `out`, then exits `exit_code`."""
    code = (
        "import json, signal, sys, time\n"
        "out = sys.argv[1]\n"
        "def got(n, f):\n"
        "    json.dump({'argv': sys.argv[2:], 'signal': n}, open(out, 'w')); sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, got)\n"
        "json.dump({'argv': sys.argv[2:], 'signal': None}, open(out, 'w'))\n"
        f"if {wait_for_signal}:\n"
        "    open(out + '.ready', 'w').close()\n"
        "    time.sleep(30)\n"
        f"sys.exit({exit_code})\n"
    )
    return [sys.executable, "-c", code, str(out), "--rdzv_conf", f"join_timeout=1800,is_host={IS_HOST}"]


def launch(index: str | None, host_port: tuple[str, int], command: list[str], **kw) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "JOB_COMPLETION_INDEX"}
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = index
    host, port = host_port
    argv = [sys.executable, "-c", E.launcher_source(), host, str(port), *command]
    return subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture
def listening():
    """A rendezvous host that answers (a listening TCP socket)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()
    server.close()


@pytest.fixture
def gone():
    """A rendezvous host that no longer answers: a port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    address = s.getsockname()
    s.close()
    return address


@pytest.mark.parametrize(("index", "is_host"), [("0", "1"), ("1", "0"), ("7", "0"), (None, "0")])
def test_only_the_pod_of_index_zero_hosts_the_rendezvous_store(tmp_path, listening, index, is_host):
    out = tmp_path / "argv.json"
    proc = launch(index, listening, fake_torchrun(out))
    assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    assert json.loads(out.read_text())["argv"] == ["--rdzv_conf", f"join_timeout=1800,is_host={is_host}"]


def test_a_failure_while_the_host_answers_fails_with_torchruns_code(tmp_path, listening):
    proc = launch("1", listening, fake_torchrun(tmp_path / "a.json", exit_code=1))
    assert proc.wait(timeout=30) == 1  # the pod failure policy's FailJob rule: a bug ends the run


def test_a_failure_after_the_host_is_gone_is_the_retryable_lost_host_exit(tmp_path, gone):
    proc = launch("2", gone, fake_torchrun(tmp_path / "a.json", exit_code=1))
    assert proc.wait(timeout=30) == LOST_HOST_EXIT == 75  # counted: the Job re-creates the pod
    assert proc.stderr is not None and "no longer answers" in proc.stderr.read()


def test_the_host_itself_never_claims_a_lost_host(tmp_path, gone):
    """Pod 0 failing is the run failing (its own store is the one that is gone)."""
    proc = launch("0", gone, fake_torchrun(tmp_path / "a.json", exit_code=1))
    assert proc.wait(timeout=30) == 1


def test_success_is_success_whatever_the_host_does(tmp_path, gone):
    assert launch("1", gone, fake_torchrun(tmp_path / "a.json")).wait(timeout=30) == 0


def test_sigterm_reaches_torchrun_and_a_stopped_pod_does_not_probe(tmp_path, gone):
    """Eviction or the Job's deadline: SIGTERM goes to torchrun (which passes it to the workers for a last
    checkpoint); the pod reports torchrun's code, not a lost host."""
    out = tmp_path / "a.json"
    proc = launch("1", gone, fake_torchrun(out, wait_for_signal=True))
    deadline = time.monotonic() + 30
    while not Path(str(out) + ".ready").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert json.loads(out.read_text())["signal"] == signal.SIGTERM


def test_the_shipped_launcher_is_the_module_without_its_docstrings():
    import trainstack.model.eks_launcher as launcher

    source = E.launcher_source()
    assert launcher.__doc__ and launcher.__doc__.splitlines()[0] not in source
    assert "def main(argv" in source and "LOST_HOST_EXIT = 75" in source
    compile(source, "<launcher>", "exec")  # what `python3 -c` runs
