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

import json
import os
import signal
import socket
import struct
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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


def main(argv: list[str]) -> None:
    path = os.environ.get("FAKE_PULUMI_SERVER", "")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        _standalone(argv)
        return
    header = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    socket.send_fds(conn, [struct.pack(">I", len(header))], _std_fds())
    conn.sendall(header)

    def relay(signum: int, frame: object) -> None:
        conn.sendall(b"S" + bytes([signum]))

    for signum in SIGNALS:
        signal.signal(signum, relay)
    reply = b""
    while len(reply) < 5:
        chunk = conn.recv(5 - len(reply))  # a relayed signal interrupts and resumes this (PEP 475)
        if not chunk:  # the server went away mid-command
            print("error: the fake Pulumi CLI server went away", file=sys.stderr, flush=True)
            os._exit(255)
        reply += chunk
    code = struct.unpack(">i", reply[1:5])[0]
    if code < 0:  # the command died of a signal: die of it too, as the CLI process itself would have
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
