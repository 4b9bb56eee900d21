"""Boot script of each GPU instance of trainstack's "ec2" backend. Goes gzipped
into user data (16 KB cap): keep it one small file, stdlib + boto3, Python 3.9."""
from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("trainstack.bootstrap")

GROUP_TAG = "aws:autoscaling:groupName"
IMDS = "http://169.254.169.254/latest/"
MODEL_DIR, CHECKPOINT_DIR, HOSTFILE = "/opt/ml/model", "/opt/ml/checkpoints", "/opt/ml/hostfile"
EXIT_PEER_TIMEOUT = 124  # same as coreutils timeout(1)
REQUIRED = ("nodes", "image", "command", "artifact_uri", "checkpoint_uri")
DEFAULTS = {"region": "", "gpus_per_node": 1, "environment": {}, "dataset_uri": "",
            "master_port": 29500, "peer_timeout_seconds": 900,
            "done_timeout_seconds": 600, "teardown": True,
            "max_runtime_seconds": 0, "log_group": None}  # 0/None: no limit, no CloudWatch
PYTHON = re.compile(r"python(3(\.\d+)?)?")
AWS_ERRORS = (BotoCoreError, ClientError)


class Peer(NamedTuple):
    instance_id: str
    private_ip: str


@dataclass(frozen=True)
class Identity:
    instance_id: str
    private_ip: str
    region: str


class PeerTimeout(RuntimeError):
    def __init__(self, found: int, nodes: int, group: str, timeout_s: float, teardown: bool = True):
        self.found, self.nodes = found, nodes
        then = "scaling the group to zero" if teardown else "teardown is off, leaving the group alone"
        super().__init__(f"only {found} of {nodes} nodes came up in Auto Scaling group {group} "
                         f"within {timeout_s:g}s; {then}")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_settings(path: str) -> dict:
    with open(path) as f:
        raw = json.load(f)
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise ValueError(f"{path}: missing settings {missing}")
    unknown = sorted(set(raw) - set(REQUIRED) - set(DEFAULTS))
    if unknown:  # likely a typo: say so rather than silently use a default
        log.warning("ignoring unknown settings %s", unknown)
    s = {**DEFAULTS, **raw}
    for k in ("nodes", "gpus_per_node", "master_port"):
        s[k] = int(s[k])
    if min(s["nodes"], s["gpus_per_node"]) < 1:
        raise ValueError("nodes and gpus_per_node must be >= 1")
    for k in ("artifact_uri", "checkpoint_uri"):
        split_s3_uri(s[k])
        s[k] = s[k] if s[k].endswith("/") else s[k] + "/"
    cmd = s["command"]
    if not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
        raise ValueError("command must be a list of strings")
    torchrun_argv(cmd, 1, 0, 1, "127.0.0.1", 1)  # fail before waiting for peers, not after
    return s


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return bucket, key


def instance_identity(base: str = IMDS, timeout: float = 5.0) -> Identity:
    req = urllib.request.Request(base + "api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
    token = urllib.request.urlopen(req, timeout=timeout).read().decode()

    def get(path: str) -> str:
        r = urllib.request.Request(base + "meta-data/" + path, headers={"X-aws-ec2-metadata-token": token})
        return urllib.request.urlopen(r, timeout=timeout).read().decode().strip()

    return Identity(get("instance-id"), get("local-ipv4"), get("placement/region"))


def group_name_of(ec2, instance_id: str, attempts: int = 6, sleep=time.sleep) -> str:
    """Our Auto Scaling group (its name is generated, so it is not in user data)."""
    for _ in range(attempts):  # a brand-new instance can briefly be unknown to EC2
        try:
            res = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
            tags = {t["Key"]: t["Value"] for r in res for i in r["Instances"] for t in i.get("Tags", [])}
            if GROUP_TAG in tags:
                return tags[GROUP_TAG]
        except ClientError:
            pass
        sleep(5)
    raise RuntimeError(f"{instance_id} has no {GROUP_TAG} tag: not launched by an Auto Scaling group?")


def assign_ranks(peers) -> list[Peer]:
    """Numeric IP order (10.0.0.9 < 10.0.0.10); rank 0 leads."""
    return sorted((Peer(*p) for p in peers), key=lambda p: (ipaddress.ip_address(p.private_ip), p.instance_id))


def rank_of(peers, instance_id: str) -> int | None:
    """None: an extra instance, which must not train."""
    return next((i for i, p in enumerate(peers) if p.instance_id == instance_id), None)


def ready_peers(autoscaling, ec2, group_name: str) -> list[Peer]:
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    in_service = {i["InstanceId"] for g in groups for i in g.get("Instances", [])
                  if i.get("LifecycleState") == "InService"}
    filters = [{"Name": "tag:" + GROUP_TAG, "Values": [group_name]},
               {"Name": "instance-state-name", "Values": ["running"]}]
    peers = [Peer(i["InstanceId"], i["PrivateIpAddress"])
             for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
             for r in page["Reservations"] for i in r["Instances"]
             if i["InstanceId"] in in_service and i.get("PrivateIpAddress")]
    return assign_ranks(peers)


def wait_for_peers(autoscaling, ec2, group_name: str, nodes: int, timeout_s: float, poll_s: float = 10,
                   clock=time.monotonic, sleep=time.sleep, teardown: bool = True) -> list[Peer]:
    """Poll until `nodes` instances are InService and running; lowest IPs win."""
    deadline, peers = clock() + timeout_s, []
    while True:
        try:
            peers = ready_peers(autoscaling, ec2, group_name)
        except AWS_ERRORS as e:  # throttling etc. must not kill the run; the deadline bounds it
            log.warning("listing peers failed: %s", e)
        if len(peers) >= nodes:
            return peers[:nodes]
        if clock() >= deadline:
            raise PeerTimeout(len(peers), nodes, group_name, timeout_s, teardown)
        log.info("%d of %d nodes ready in %s; waiting", len(peers), nodes, group_name)
        sleep(max(0.0, min(poll_s, deadline - clock())))


def write_hostfile(peers, slots: int, path: str) -> str:
    """For MPI/DeepSpeed users; torchrun does not need it."""
    with open(path, "w") as f:
        f.writelines(f"{p.private_ip} slots={slots}\n" for p in peers)
    return path


def torchrun_argv(command, nnodes: int, node_rank: int | str, nproc_per_node: int,
                  master_addr: str, master_port: int) -> list[str]:
    """`node_rank` may also be text the launcher expands, e.g. Kubernetes' "$(JOB_COMPLETION_INDEX)" (eks)."""
    cmd = list(command)
    if not cmd:
        raise ValueError("command is empty")
    argv = ["torchrun", "--nnodes", str(nnodes), "--node_rank", str(node_rank),
            "--nproc_per_node", str(nproc_per_node), "--master_addr", master_addr,
            "--master_port", str(master_port)]
    if not PYTHON.fullmatch(os.path.basename(cmd[0])):
        return argv + ["--no-python"] + cmd
    cmd = cmd[1:]
    if cmd[:1] == ["-m"] and len(cmd) > 1:
        return argv + cmd
    if not cmd or cmd[0].startswith("-"):
        raise ValueError(f"use `python script.py ...` or `python -m module ...`, not {command!r}")
    return argv + cmd


def container_argv(settings: dict, torchrun_argv, rank: int, output_dir: str, *,
                   checkpoint_dir: str | None = None, hostfile: str | None = None) -> list[str]:
    ckpt = checkpoint_dir or os.path.join(os.path.dirname(os.path.abspath(output_dir)), "checkpoints")
    env = {"AWS_DEFAULT_REGION": settings["region"]} if settings.get("region") else {}
    env.update(settings.get("environment") or {})
    env.update({  # ours win: the training code relies on them
        "TRAINSTACK_DATASET_URI": settings.get("dataset_uri", ""),
        "TRAINSTACK_ARTIFACT_URI": settings["artifact_uri"],
        "TRAINSTACK_CHECKPOINT_URI": settings["checkpoint_uri"],
        "TRAINSTACK_NODE_RANK": str(rank),
        "TRAINSTACK_NNODES": str(settings["nodes"]),
        "SM_MODEL_DIR": MODEL_DIR,
    })
    # --ipc host: NCCL/DataLoader outgrow docker's 64 MB /dev/shm; it makes --shm-size moot
    argv = ["docker", "run", "--rm", "--gpus", "all", "--network", "host", "--ipc", "host",
            "--ulimit", "memlock=-1",  # NCCL pins memory
            "-v", f"{output_dir}:{MODEL_DIR}", "-v", f"{ckpt}:{CHECKPOINT_DIR}"]
    if hostfile:
        argv += ["-v", f"{hostfile}:{HOSTFILE}:ro"]
        env["TRAINSTACK_HOSTFILE"] = HOSTFILE
    if settings.get("log_group"):  # non-blocking: a CloudWatch hiccup must not stall training
        argv += ["--log-driver", "awslogs", "--log-opt", "mode=non-blocking",
                 "--log-opt", f"awslogs-region={settings['region']}",
                 "--log-opt", f"awslogs-group={settings['log_group']}",
                 "--log-opt", f"awslogs-stream=node-{rank}-{os.uname().nodename}"]
    for k, v in env.items():
        argv += ["-e", f"{k}={v}"]
    return argv + [settings["image"]] + list(torchrun_argv)


def run_logged(argv, log_path: str) -> int:
    """Tee argv's output to stdout and log_path; return its exit code."""
    with open(log_path, "ab") as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in p.stdout:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
            out.write(line)
            out.flush()
        return p.wait()


def upload_dir(s3, local_dir: str, s3_uri: str) -> list[str]:
    """Keeps relative paths; returns the keys."""
    bucket, prefix = split_s3_uri(s3_uri if s3_uri.endswith("/") else s3_uri + "/")
    keys = []
    for root, dirs, files in os.walk(local_dir):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            keys.append(prefix + os.path.relpath(path, local_dir).replace(os.sep, "/"))
            s3.upload_file(path, bucket, keys[-1])
    return keys


def put_json(s3, uri: str, doc: dict) -> None:
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc, indent=2).encode(),
                  ContentType="application/json")


def run_marker(s3, artifact_uri: str, ok: bool, **doc) -> None:
    """<artifact_uri>_SUCCESS or _FAILED: the run command reads it to find the model."""
    doc.update(status="succeeded" if ok else "failed", finished_at=now())
    put_json(s3, artifact_uri + ("_SUCCESS" if ok else "_FAILED"), doc)


def done_markers(s3, artifact_uri: str, nnodes: int, peers=None) -> dict[int, dict]:
    """rank -> done marker; with peers, only markers of this run's instances
    (artifact_uri is reused across runs)."""
    bucket, prefix = split_s3_uri(artifact_uri)
    found = {}
    for rank in range(nnodes):
        try:
            doc = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}logs/node-{rank}.done")["Body"].read())
        except (ValueError, *AWS_ERRORS):  # absent (403 without ListBucket) or garbled
            continue
        if peers is None or doc.get("instance_id") == peers[rank].instance_id:
            found[rank] = doc
    return found


def wait_for_done_markers(s3, artifact_uri: str, nnodes: int, timeout_s: float, poll_s: float = 10,
                          clock=time.monotonic, sleep=time.sleep, peers=None) -> list[int]:
    """Bounded; returns the ranks still missing."""
    deadline = clock() + timeout_s
    while True:
        missing = sorted(set(range(nnodes)) - set(done_markers(s3, artifact_uri, nnodes, peers)))
        if not missing or clock() >= deadline:
            return missing
        log.info("waiting for done markers of ranks %s", missing)
        sleep(max(0.0, min(poll_s, deadline - clock())))


def scale_group_to_zero(autoscaling, group_name: str) -> None:
    # MinSize too, or the group refuses; MaxSize stays so the next run only sets desired
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=group_name, MinSize=0, DesiredCapacity=0)
    log.info("scaled Auto Scaling group %s to zero", group_name)


def make_client(service: str, region: str):
    import boto3
    return boto3.client(service, region_name=region)


def run_node(s, me, peers, rank, workdir, log_path, s3, run) -> int:
    """Train, then upload model (rank 0), log and done marker."""
    model_dir, ckpt_dir = (os.path.join(workdir, d) for d in ("model", "checkpoints"))
    for d in (model_dir, ckpt_dir):
        os.makedirs(d, exist_ok=True)
    hostfile = write_hostfile(peers, s["gpus_per_node"], os.path.join(workdir, "hostfile"))
    argv = container_argv(s, torchrun_argv(s["command"], len(peers), rank, s["gpus_per_node"],
                                           peers[0].private_ip, s["master_port"]),
                          rank, model_dir, checkpoint_dir=ckpt_dir, hostfile=hostfile)
    if s["max_runtime_seconds"]:  # SIGTERM reaches torchrun via docker's signal proxy; exit 124
        argv = ["timeout", "--kill-after=120", str(s["max_runtime_seconds"])] + argv
    log.info("node rank %d of %d, leader %s; running %s", rank, len(peers), peers[0].private_ip, argv)
    started = now()
    try:
        code = run(argv, log_path)  # the user data did `docker login` for ECR images
    except Exception:  # still report, so the leader need not time out
        log.exception("could not run the training container")
        code = 1
    log.info("training exited with code %d", code)
    art = s["artifact_uri"]
    if rank == 0:
        upload_dir(s3, model_dir, art + "model/")
    s3.upload_file(log_path, *split_s3_uri(f"{art}logs/node-{rank}.log"))
    put_json(s3, f"{art}logs/node-{rank}.done", {
        "rank": rank, "exit_code": code, "instance_id": me.instance_id,
        "private_ip": me.private_ip, "started_at": started, "finished_at": now()})
    return code


def finish_run(s, peers, code, group, s3, clock, sleep) -> bool:
    """Leader: wait for all ranks, then write _SUCCESS or _FAILED."""
    art, n = s["artifact_uri"], len(peers)
    missing = wait_for_done_markers(s3, art, n, s["done_timeout_seconds"], clock=clock, sleep=sleep, peers=peers)
    markers = done_markers(s3, art, n, peers)
    failed = {r: m.get("exit_code") for r, m in sorted(markers.items()) if m.get("exit_code") != 0}
    ok = not missing and not failed
    overall = code or next(iter(failed.values()), 1 if missing else 0)
    run_marker(s3, art, ok, exit_code=overall, missing_ranks=missing, model_uri=art + "model/",
               failed_ranks={str(r): c for r, c in failed.items()}, group=group,
               instances=[p.instance_id for p in peers])
    log.info("run %s, exit code %s, missing ranks %s", "ok" if ok else "failed", overall, missing)
    return ok


def bootstrap(s, me, workdir, log_path, clients, run, clock, sleep) -> int:
    ec2, asg, s3 = clients["ec2"], clients["autoscaling"], clients["s3"]
    art, teardown = s["artifact_uri"], bool(s["teardown"])
    group = group_name_of(ec2, me.instance_id, sleep=sleep)
    log.info("instance %s (%s) in group %s; %s node(s) wanted", me.instance_id, me.private_ip, group, s["nodes"])
    try:
        peers = wait_for_peers(asg, ec2, group, s["nodes"], s["peer_timeout_seconds"],
                               clock=clock, sleep=sleep, teardown=teardown)
    except PeerTimeout as e:
        log.error("%s", e)
        try:
            run_marker(s3, art, False, reason="peer_timeout", message=str(e), exit_code=EXIT_PEER_TIMEOUT,
                       missing_ranks=list(range(e.found, e.nodes)), group=group, instance_id=me.instance_id)
        finally:  # whatever S3 says, no GPU may wait forever
            if teardown:
                scale_group_to_zero(asg, group)
        return EXIT_PEER_TIMEOUT
    rank = rank_of(peers, me.instance_id)
    if rank is None:  # e.g. the group briefly had more instances than nodes
        log.info("%s is not one of the %d chosen nodes; exiting without training", me.instance_id, len(peers))
        return 0
    if rank != 0:
        return run_node(s, me, peers, rank, workdir, log_path, s3, run)
    try:
        code = run_node(s, me, peers, 0, workdir, log_path, s3, run)
        finish_run(s, peers, code, group, s3, clock, sleep)
        return code
    except Exception:
        run_marker(s3, art, False, reason="leader error, see its cloud-init log", exit_code=1, group=group)
        raise
    finally:  # the leader always tears down, even if something above blew up
        if teardown:
            scale_group_to_zero(asg, group)


def main(argv=None, *, clients=None, identity=None, run=run_logged, clock=time.monotonic, sleep=time.sleep) -> int:
    """Returns this node's training exit code. clients: {"ec2", "autoscaling", "s3"} boto3
    clients; run(argv, log_path) -> exit code runs docker."""
    p = argparse.ArgumentParser()
    p.add_argument("--settings", default="/etc/trainstack/run.json")
    p.add_argument("--workdir", default="/opt/trainstack/run")
    a = p.parse_args(argv)
    os.makedirs(a.workdir, exist_ok=True)
    log_path = os.path.join(a.workdir, "node.log")
    handlers = [logging.StreamHandler(sys.stdout), logging.FileHandler(log_path)]
    for h in handlers:
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(h)
    log.setLevel(logging.INFO)
    try:
        s = load_settings(a.settings)
        me = identity or instance_identity()
        s["region"] = s["region"] or me.region
        clients = clients or {k: make_client(k, s["region"]) for k in ("ec2", "autoscaling", "s3")}
        return bootstrap(s, me, a.workdir, log_path, clients, run, clock, sleep)
    finally:  # main() may run many times in one process (tests)
        for h in handlers:
            log.removeHandler(h)
            h.close()


if __name__ == "__main__":
    sys.exit(main())
