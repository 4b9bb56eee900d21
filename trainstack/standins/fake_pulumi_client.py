"""The `pulumi` a test (or `trainstack try`) runs when a fake-CLI server is up: hands this command to the
server (trainstack/standins/fake_pulumi_server.py), which runs it in a forked copy of a process that has
already imported everything the fake CLI needs, then exits as that command exited.

Started as `python -S fake_pulumi_client.py ARGV...` (stdlib only, no site: ~10 ms) by the `bin/pulumi`
script when `$FAKE_PULUMI_SERVER` names a socket. The command gets this process's stdin, stdout and
stderr (passed over the socket), its working folder, environment and arguments; SIGINT, SIGTERM and
SIGHUP sent to this process are relayed to it, so the driver's Ctrl-C handling meets the same fake CLI
as without a server. If this process dies, the command is killed; if the command dies of a signal, so
does this process. When no server answers, it runs the fake CLI itself (`python -m`), as without one.
"""

from __future__ import annotations

# The C modules, not `signal`/`socket`/`json`: their imports (enum, functools, re) would triple this process's
# start-up, and it runs once per fake `pulumi` command. (typeshed has no stub for _signal; it is `signal`'s core.)
import _signal  # type: ignore[import-not-found]
import _socket
import os
import sys

SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)


def _standalone(argv: list[str]) -> None:
    """No server: the fake CLI in this process's place (a new interpreter, with site-packages)."""
    os.execv(sys.executable, [sys.executable, "-m", "trainstack.standins.fake_pulumi", *argv])


def _std_fds() -> list[int]:
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:  # a closed standard stream: the command gets /dev/null there
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def request(argv: list[str], cwd: str, env: dict[str, str]) -> bytes:
    """The request: its length (4 bytes, big-endian), then NUL-separated fields (none of which can hold a NUL):
    the working folder, the number of arguments, the arguments, then the environment as NAME=value."""
    fields = [cwd, str(len(argv)), *argv, *(f"{k}={v}" for k, v in env.items())]
    body = b"\0".join(os.fsencode(f) for f in fields)
    return len(body).to_bytes(4, "big") + body


def main(argv: list[str]) -> None:
    path = os.environ.get("FAKE_PULUMI_SERVER", "")
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        _standalone(argv)
        return
    message = request(argv, os.getcwd(), dict(os.environ))
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in _std_fds())  # as socket.send_fds packs them
    conn.sendmsg([message[:4]], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
    conn.sendall(message[4:])

    def relay(signum: int, frame: object) -> None:
        conn.sendall(b"S" + bytes([signum]))

    for signum in SIGNALS:
        _signal.signal(signum, relay)
    reply = b""
    while len(reply) < 5:
        chunk = conn.recv(5 - len(reply))  # a relayed signal interrupts and resumes this (PEP 475)
        if not chunk:  # the server went away mid-command
            os.write(2, b"error: the fake Pulumi CLI server went away\n")
            os._exit(255)
        reply += chunk
    code = int.from_bytes(reply[1:5], "big", signed=True)
    if code < 0:  # the command died of a signal: die of it too, as the CLI process itself would have
        _signal.signal(-code, _signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
