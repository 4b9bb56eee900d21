"""The launcher of one pod of an eks multi-node Job: runs `torchrun` (elastic, c10d) and names a lost host.

Shipped as its own source text and run by `python3 -c <this file> <host> <port> <torchrun argv...>` in the
training container (standard library only; any image that runs torchrun has python3). It does two things
Kubernetes cannot express in a pod template:

1. **Who hosts the rendezvous store.** Every pod of the Indexed Job gets the same arguments, but only the
   pod of completion index 0 (`train-0`, the endpoint's host) may host the c10d store. Left to itself,
   torchrun guesses from its hostname and addresses whether the endpoint is itself
   (torch/distributed/elastic/rendezvous/c10d_rendezvous_backend.py `_create_tcp_store`), which depends on
   the cluster's DNS having published the pod; the launcher says it: the `@IS_HOST@` placeholder in the
   arguments becomes `1` for index 0 and `0` everywhere else (the backend's `is_host` option).
2. **A lost rendezvous host is not a failed run.** When the pod hosting the store is evicted (a spot
   interruption, a capacity-rebalance drain), every other agent loses the store and its torchrun exits
   non-zero, just as it would for a bug. A pod whose torchrun fails while the endpoint no longer answers
   exits with `LOST_HOST_EXIT` (75, EX_TEMPFAIL) instead, which the Job's pod failure policy counts (a new
   pod takes its index and rejoins the replacement host) rather than failing the Job. A failure while the
   host still answers keeps torchrun's exit code, and the Job fails.

Signals the pod receives (SIGTERM at eviction or at the Job's deadline) go to torchrun, which passes them to
the training processes; a pod that was told to stop reports torchrun's code without probing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

IS_HOST = "@IS_HOST@"  # replaced in every argument by "1" (index 0) or "0"
LOST_HOST_EXIT = 75  # EX_TEMPFAIL (sysexits.h): try again
INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by the Job controller in Indexed Job pods
PROBE_TIMEOUT = 5.0  # seconds; one attempt right after torchrun failed (a new host takes minutes to start)


def host_answers(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether something accepts a TCP connection at host:port (the store host's agent)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:  # refused, unreachable, timed out, or the name no longer resolves
        return False


def exit_code(returncode: int) -> int:
    """A child's return code as a shell reports it: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: launcher HOST PORT COMMAND...", file=sys.stderr)
        return 2
    host, port, command = argv[0], int(argv[1]), argv[2:]
    hosts_store = os.environ.get(INDEX_ENV) == "0"
    command = [a.replace(IS_HOST, "1" if hosts_store else "0") for a in command]
    child = subprocess.Popen(command)
    stopping = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    code = exit_code(child.wait())
    if code != 0 and not hosts_store and not stopping and not host_answers(host, port):
        print(
            f"trainstack: torchrun exited with {code} and the rendezvous host {host}:{port} no longer answers: "
            f"exiting {LOST_HOST_EXIT} so that a new pod rejoins the replacement host and resumes from the "
            "checkpoint",
            file=sys.stderr,
            flush=True,
        )
        return LOST_HOST_EXIT
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
