"""The torchrun command lines trainstack starts, shared by config validation, the eks Job and the EC2 node
bootstrap (which ships this module beside itself in the node's user data: standard library only)."""

from __future__ import annotations

import os
import re

PYTHON = re.compile(r"python(3(\.\d+)?)?")


def check_command(command) -> list[str]:
    """The command's tail for torchrun: a script (+args), `-m module`, or --no-python + program."""
    cmd = list(command)
    if not cmd:
        raise ValueError("command is empty")
    if not PYTHON.fullmatch(os.path.basename(cmd[0])):
        return ["--no-python"] + cmd
    cmd = cmd[1:]
    if cmd[:1] == ["-m"] and len(cmd) > 1:
        return cmd
    if not cmd or cmd[0].startswith("-"):
        raise ValueError(f"use `python script.py ...` or `python -m module ...`, not {command!r}")
    return cmd


def elastic_argv(
    command,
    nnodes: int,
    nproc_per_node: int,
    leader_ip: str,
    port: int,
    run_id: str,
    max_restarts: int = 3,
    read_timeout: int = 900,
    is_host: str | None = None,
) -> list[str]:
    """torchrun elastic: a c10d rendezvous hosted by the leader's agent, a fixed node count, and
    restarts of the whole worker group (from the checkpoint) when a node fails or a replacement joins.

    `read_timeout`: how long a non-leader agent waits for the leader's store. The c10d backend builds
    the agents' TCPStore with `timeout=read_timeout`, default 60 s
    (torch/distributed/elastic/rendezvous/c10d_rendezvous_backend.py `_create_tcp_store`), so a worker
    whose agent starts more than a minute before the leader's would give up; nodes of one run may start
    minutes apart (boot, code download), so the caller passes the peer timeout.

    `is_host`: whether this agent hosts the store ("1"/"0", or a placeholder its launcher replaces), passed
    as the c10d backend's `is_host` option; without it the agent guesses from its hostname and addresses
    (c10d_rendezvous_backend.py `_create_tcp_store`), which the ec2 nodes (host network, the leader's IP as
    endpoint) get right."""
    conf = f"join_timeout=1800,read_timeout={max(60, int(read_timeout))}"
    if is_host is not None:
        conf += f",is_host={is_host}"
    return [
        "torchrun",
        "--nnodes",
        f"{nnodes}:{nnodes}",
        "--nproc_per_node",
        str(nproc_per_node),
        "--rdzv_backend",
        "c10d",
        "--rdzv_endpoint",
        f"{leader_ip}:{port}",
        "--rdzv_id",
        run_id,
        # long enough for a replacement instance to boot and join (default 600 s)
        "--rdzv_conf",
        conf,
        "--max_restarts",
        str(max_restarts),
    ] + check_command(command)
