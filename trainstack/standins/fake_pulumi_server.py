"""One process that serves every fake `pulumi` command of a test session (or a `trainstack try`).

Each fake CLI command used to be a new interpreter that started up and imported the fake, grpc and, for
`up`, pulumi and pulumi_aws before doing a few milliseconds of work (0.05 s per `stack output`, about
0.5 s of imports before an `up` ran the program). This server imports all of that once, then forks a
copy of itself per command: the copy is as fresh as a new process (nothing a command does reaches the server or the
next command), and it starts with its imports done.

    python -m trainstack.standins.fake_pulumi_server SOCKET [--standins]

prints `ready` when it accepts commands and exits when its stdin closes (its owner is gone) or on
SIGTERM. The client (`fake_pulumi_client.py`, run by `bin/pulumi`) sends argv, working folder,
environment and its stdin/stdout/stderr; per command the server forks the command, relays the client's
signals to it, kills it if the client dies, and sends back its exit status (negative: killed by that
signal). The server itself is one thread in one select loop, so forking it is safe.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PRELOAD = (
    "grpc",  # the engine-event stream of preview/up/destroy
    "pulumi",
    "pulumi_aws",
    "trainstack.standins.fake_pulumi",
    "trainstack.plan.offline",  # the mock engine `up` evaluates the program under
    "trainstack.programs.program",  # what `__main__.py` imports (it imports each backend's components as it runs)
)


def _recv_exact(conn: socket.socket, n: int, first: bytes = b"") -> bytes:
    data = first
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("the client went away")
        data += chunk
    return data


def parse_request(body: bytes) -> dict[str, Any]:
    """The client's request (fake_pulumi_client.request): working folder, argument count, arguments, NAME=value."""
    fields = [os.fsdecode(f) for f in body.split(b"\0")]
    count = int(fields[1])
    env = dict(f.partition("=")[::2] for f in fields[2 + count :])
    return {"cwd": fields[0], "argv": fields[2 : 2 + count], "env": env}


def _command(argv: list[str]) -> int:
    """The fake CLI's `main`, with what running it as `python -m` would do around it."""
    from trainstack.standins import fake_pulumi as fake

    fake.STATE = Path(os.environ.get("FAKE_PULUMI_STATE", "/nonexistent"))  # read at import in a new process
    sys.argv = [str(fake.__file__), *argv]
    try:
        return int(fake.main(argv) or 0)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # an unhandled ^C kills a Python process by SIGINT
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:  # noqa: BLE001 - as the interpreter reports an uncaught error
        traceback.print_exc()
        return 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass


def _start(conn: socket.socket) -> int:
    """Read one request and fork its command; returns the command's pid. (The client sends its request as soon
    as it connects; the loop waits for it, which is fine for a stand-in with one caller per command.)"""
    msg, fds, _, _ = socket.recv_fds(conn, 4, 3)
    size = int.from_bytes(_recv_exact(conn, 4, msg), "big")  # as fake_pulumi_client.request writes it
    request = parse_request(_recv_exact(conn, size))
    pid = os.fork()
    if pid == 0:  # the command: as fresh as a new interpreter, with the imports done
        code = 1
        try:
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                if fd > 2:
                    os.close(fd)
            os.closerange(3, 1 << 16)  # the server's sockets and the other commands' descriptors
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            code = _command(request["argv"])
        except BaseException:  # noqa: BLE001 - never return into the server's loop
            traceback.print_exc()
        os._exit(code & 0xFF)
    for fd in fds:
        os.close(fd)
    return pid


def serve(path: str, *, standins: bool = False) -> None:
    """Accept commands, fork each, relay the clients' signals, report exit statuses: one thread, one loop.
    `standins` (`trainstack try`, where up/destroy also make and remove in moto what the outputs name): load the
    stand-in cloud and the AWS service models its clients need, so each command's clients are quick to make."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    if standins:
        from trainstack.standins import cloud

        cloud.warm()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(128)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # remove the socket on the way out
    print("ready", flush=True)
    sys.stderr.flush()
    owner = sys.stdin.fileno()
    clients: dict[socket.socket, int] = {}  # connection -> its command's pid
    running: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)
    try:
        while True:
            ready, _, _ = select.select([server, owner, *clients, *running], [], [])
            if owner in ready and not os.read(owner, 1024):
                return  # the owner closed our stdin: it is gone
            if server in ready:
                conn, _ = server.accept()
                try:
                    pid = _start(conn)
                except (OSError, EOFError, ValueError):
                    conn.close()
                else:
                    clients[conn] = pid
                    running[os.pidfd_open(pid)] = (pid, conn)
            for pidfd in [r for r in ready if isinstance(r, int) and r in running]:
                pid, conn = running.pop(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                if clients.pop(conn, None) is not None:
                    try:
                        conn.sendall(b"X" + os.waitstatus_to_exitcode(status).to_bytes(4, "big", signed=True))
                    except OSError:
                        pass
                conn.close()
            for conn in [r for r in ready if isinstance(r, socket.socket) and r in clients]:
                pid = clients[conn]
                try:
                    data = conn.recv(64)
                except OSError:
                    data = b""
                if not data:  # the client died: so does its command (its pidfd reports the end)
                    del clients[conn]
                    _signal(pid, signal.SIGKILL)
                    continue
                for i in range(0, len(data) - 1, 2):
                    if data[i : i + 1] == b"S":
                        _signal(pid, data[i + 1])
    finally:
        for pid, _ in running.values():
            _signal(pid, signal.SIGKILL)
        server.close()
        os.unlink(path)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


CLIENT = Path(__file__).with_name("fake_pulumi_client.py")


def launcher(python: str) -> str:
    """The `bin/pulumi` script: the command goes to the server when `$FAKE_PULUMI_SERVER` is a socket,
    else a new interpreter runs it."""
    return (
        "#!/bin/sh\n"
        "# The fake Pulumi CLI (trainstack/standins/fake_pulumi.py); with $FAKE_PULUMI_SERVER, run by that server.\n"
        'if [ -S "${FAKE_PULUMI_SERVER:-}" ]; then\n'
        f'  exec "{python}" -S "{CLIENT}" "$@"\n'
        "fi\n"
        f'exec "{python}" -m trainstack.standins.fake_pulumi "$@"\n'
    )


@contextlib.contextmanager
def running(python: str = sys.executable, *, standins: bool = False) -> Iterator[str]:
    """A server for the duration of the block; yields its socket (in a short temporary folder: a Unix
    socket's path is limited to 107 bytes). `standins`: see `serve`."""
    import shutil
    import subprocess
    import tempfile

    folder = tempfile.mkdtemp(prefix="fake-pulumi-")
    path = os.path.join(folder, "server.sock")
    proc = subprocess.Popen(
        [python, "-m", "trainstack.standins.fake_pulumi_server", path, *(["--standins"] if standins else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = proc.stdout.readline().strip()
        if ready != "ready":
            raise RuntimeError(f"the fake Pulumi CLI server did not start (it said {ready!r})")
        yield path
    finally:
        proc.stdin.close()  # the server exits when its stdin closes
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    serve(sys.argv[1], standins="--standins" in sys.argv[2:])
