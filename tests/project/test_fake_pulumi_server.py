"""The fake-CLI server (trainstack/standins/fake_pulumi_server.py) runs each fake `pulumi` command as the fake CLI
run as its own interpreter would: same output, exit status and Ctrl-C handling; a command whose caller dies dies
too; without a server the launcher runs the fake CLI itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, wait_for

LAUNCHER = ROOT / "tests" / "fakes" / "pulumi" / "bin" / "pulumi"


@pytest.fixture
def state(tmp_path) -> Path:
    folder = tmp_path / "state"
    (folder / "stacks").mkdir(parents=True)
    resources = [
        {"urn": f"urn:pulumi:t::trainstack::aws:s3/bucket:Bucket::b{i}", "type": "aws:s3/bucket:Bucket"}
        for i in range(30)
    ]
    doc = {"name": "t", "config": {}, "resources": resources, "outputs": {"bucket": "b0"}, "history": []}
    (folder / "stacks" / "t.json").write_text(json.dumps(doc))
    return folder


def pulumi(state: Path, server: str | None, *argv: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "FAKE_PULUMI_STATE": str(state), "FAKE_PULUMI_PYTHON": sys.executable}
    env.pop("FAKE_PULUMI_SERVER", None)
    if server:
        env["FAKE_PULUMI_SERVER"] = server
    return subprocess.Popen(
        [str(LAUNCHER), "--non-interactive", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kw,
    )


def outcome(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


@pytest.mark.parametrize(
    "argv",
    [
        ("version",),
        ("stack", "output", "--stack", "t", "--json"),
        ("stack", "output", "--stack", "missing", "--json"),
        ("stack", "bogus"),
        ("stack", "ls", "--json"),
    ],
    ids=["version", "outputs", "no-such-stack", "unknown-command", "stack-ls"],
)
def test_a_served_command_prints_and_exits_as_the_fake_cli_itself(state, fake_pulumi_server, argv):
    direct = outcome(pulumi(state, None, *argv))
    served = outcome(pulumi(state, fake_pulumi_server, *argv))
    assert served == direct
    assert direct[0] in (0, 2, 255)


def _deleted(state: Path) -> int:
    try:
        return 30 - len(json.loads((state / "stacks" / "t.json").read_text())["resources"])
    except (OSError, ValueError):
        return 0


def test_ctrl_c_reaches_the_served_command_which_cancels_after_its_step(state, fake_pulumi_server):
    (state / "scenario.json").write_text(json.dumps({"step_seconds": 0.1}))
    proc = pulumi(state, fake_pulumi_server, "destroy", "--stack", "t", "--yes", "--skip-preview")
    wait_for(lambda: _deleted(state) >= 2, 20)
    proc.send_signal(signal.SIGINT)
    code, _, err = outcome(proc)
    assert code == 255
    assert "^C received; cancelling" in err and "error: destroy canceled" in err
    assert 2 <= _deleted(state) < 30  # it finished the step it was in, then stopped
    assert not (state / "locks" / "t.lock").exists()  # a cancelled destroy releases its lock


def test_a_second_ctrl_c_terminates_the_served_command_leaving_its_lock(state, fake_pulumi_server):
    # Both signals land in one step: sent just after a step ended, 0.05 s apart, in a step of 1 s.
    (state / "scenario.json").write_text(json.dumps({"step_seconds": 1.0}))
    proc = pulumi(state, fake_pulumi_server, "destroy", "--stack", "t", "--yes", "--skip-preview")
    wait_for(lambda: _deleted(state) >= 1, 20)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    code, _, err = outcome(proc)
    assert code == 255 and "^C received; terminating" in err
    assert (state / "locks" / "t.lock").exists()


def test_a_command_whose_caller_is_killed_ends_too(state, fake_pulumi_server):
    (state / "scenario.json").write_text(json.dumps({"step_seconds": 0.2}))
    proc = pulumi(state, fake_pulumi_server, "destroy", "--stack", "t", "--yes", "--skip-preview")
    lock = state / "locks" / "t.lock"
    wait_for(lock.exists, 20)
    holder = json.loads(lock.read_text())["pid"]
    assert holder != proc.pid  # the command runs in the server's fork, not in the caller
    proc.kill()
    proc.wait(10)

    def gone() -> bool:
        try:
            os.kill(holder, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, 2)  # at once: its 30 steps of 0.2 s would take 6 s
    deleted = _deleted(state)
    time.sleep(0.5)
    assert _deleted(state) == deleted < 30  # it stopped mid-destroy; nothing goes on deleting


@pytest.mark.parametrize("socket_file", [False, True], ids=["no-socket", "socket-nobody-listens-on"])
def test_without_a_server_the_fake_cli_runs_itself(state, tmp_path, socket_file):
    import socket

    path = tmp_path / "gone.sock"
    if socket_file:  # a server that died: its socket is left, nobody accepts
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(str(path))
    code, out, _ = outcome(pulumi(state, str(path), "stack", "output", "--stack", "t", "--json"))
    assert (code, json.loads(out)) == (0, {"bucket": "b0"})


def test_a_request_reaches_the_command_as_the_client_saw_it():
    """Arguments, folder and environment survive the client's NUL-separated encoding: empty arguments, `=` in
    values and names the file system gives as bytes (os.fsencode's surrogates) included."""
    from trainstack.standins.fake_pulumi_client import request
    from trainstack.standins.fake_pulumi_server import parse_request

    argv = ["stack", "output", "", "--json", "a=b", "caf\u00e9", "\udcff"]
    env = {"FAKE_PULUMI_STATE": "/tmp/x=y", "EMPTY": "", "PATH": "/usr/bin:/bin"}
    wire = request(argv, "/work/dir with space", env)
    assert int.from_bytes(wire[:4], "big") == len(wire) - 4
    assert parse_request(wire[4:]) == {"cwd": "/work/dir with space", "argv": argv, "env": env}
