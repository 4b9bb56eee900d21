"""Boot script of each GPU instance of trainstack's "ec2" backend. Goes gzipped
into user data (16 KB cap): keep it one small file, stdlib + boto3, Python 3.9.

Every exit path ends this node's part with the group at zero (or, for a latecomer, with the
node terminated and the desired capacity decremented). A run is torchrun elastic with a c10d
rendezvous on the leader: a replacement for a lost worker (spot) joins the run in that worker's
slot and all ranks restart from the newest checkpoint; a lost leader makes the survivors start
a new generation (new leader, new rendezvous), again from the checkpoint."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

# Shipped beside this script in the user data (components/ec2_training_cluster.py), as in the package.
from trainstack.model.torchrun import check_command
from trainstack.model.torchrun import elastic_argv as torchrun_argv

log = logging.getLogger("trainstack.bootstrap")

GROUP_TAG = "aws:autoscaling:groupName"
IMDS = "http://169.254.169.254/latest/"
MODEL_DIR, CHECKPOINT_DIR, HOSTFILE = "/opt/ml/model", "/opt/ml/checkpoints", "/opt/ml/hostfile"
CODE_DIR = "/opt/ml/code"
EXIT_PEER_TIMEOUT = EXIT_TIMEOUT = 124  # same as coreutils timeout(1)
STOP_GRACE_SECONDS = 120  # docker stop -t: time for a last checkpoint
STARTED = "run/started.json"  # run-started marker: run id, leader, members
FRESH = -1  # join_slot: no live run to join any more, discover peers afresh
FINISHED = "finished"  # in workdir: this node did its end-of-life action (else user data scales to zero)
REQUIRED = ("nodes", "image", "command", "artifact_uri", "checkpoint_uri")
# Under the stack's artifact prefix: the job `trainstack exec` started last. Its keys replace the user data's,
# so a new job needs no new launch template (which would replace the group's instances).
CURRENT_JOB = "current-job.json"
JOB_KEYS = ("job_id", "command", "environment", "code_uri", "artifact_uri", "checkpoint_uri", "max_runtime_seconds")
DEFAULTS = {
    "region": "",
    "gpus_per_node": 1,
    "environment": {},
    "dataset_uri": "",
    "master_port": 29500,
    "peer_timeout_seconds": 900,
    "done_timeout_seconds": 600,
    "teardown": True,
    "group": None,
    "code_uri": None,
    "max_restarts": 3,
    "max_generations": 3,
    "leader_timeout_seconds": 1200,
    "max_runtime_seconds": 0,
    "log_group": None,
    "job_id": None,
}  # 0/None: no limit, no CloudWatch
AWS_ERRORS = (BotoCoreError, ClientError)


class Peer(NamedTuple):
    instance_id: str
    private_ip: str
    spot: bool = False


@dataclass(frozen=True)
class Identity:
    instance_id: str
    private_ip: str
    region: str


class PeerTimeout(RuntimeError):
    def __init__(self, found: int, nodes: int, group: str, timeout_s: float, teardown: bool = True):
        self.found, self.nodes = found, nodes
        then = "scaling the group to zero" if teardown else "teardown is off, leaving the group alone"
        super().__init__(
            f"only {found} of {nodes} nodes came up in Auto Scaling group {group} within {timeout_s:g}s; {then}"
        )


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_settings(path: str, job=None) -> dict:
    with open(path) as f:
        raw = json.load(f)
    if job:  # `trainstack exec`'s job for this generation
        ignored = sorted(set(job) - set(JOB_KEYS))
        if ignored:
            log.warning("ignoring %s in %s", ignored, CURRENT_JOB)
        raw.update({k: job[k] for k in JOB_KEYS if k in job})
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
    check_command(cmd)  # fail before waiting for peers, not after
    if s["code_uri"]:
        split_s3_uri(s["code_uri"])
    return s


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return bucket, key


def current_job(s3, artifact_uri: str, attempts: int = 3, sleep=time.sleep):
    """`trainstack exec`'s job settings, or None when there are none (404, or 403 as S3 answers without
    ListBucket). Any other error is retried, then raised: a node must never run the wrong job."""
    bucket, key = split_s3_uri((artifact_uri if artifact_uri.endswith("/") else artifact_uri + "/") + CURRENT_JOB)
    for attempt in range(attempts):
        try:
            doc = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            if not isinstance(doc, dict):
                raise ValueError(f"{CURRENT_JOB} is not a JSON object")
            return doc
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "403", "AccessDenied"):
                return None
            if attempt + 1 == attempts:
                raise
            sleep(5)
    return None


def instance_identity(base: str = IMDS, timeout: float = 5.0) -> Identity:
    req = urllib.request.Request(
        base + "api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
    )
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
    """On-demand before spot (the leader hosts the rendezvous: keep it off spot when onDemandBase
    allows), then numeric IP order (10.0.0.9 < 10.0.0.10); rank 0 leads."""
    return sorted(
        (Peer(*p) for p in peers), key=lambda p: (bool(p.spot), ipaddress.ip_address(p.private_ip), p.instance_id)
    )


def rank_of(peers, instance_id: str) -> int | None:
    """None: an extra instance, which must not train."""
    return next((i for i, p in enumerate(peers) if p.instance_id == instance_id), None)


def ready_peers(autoscaling, ec2, group_name: str) -> list[Peer]:
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    in_service = {
        i["InstanceId"] for g in groups for i in g.get("Instances", []) if i.get("LifecycleState") == "InService"
    }
    filters = [
        {"Name": "tag:" + GROUP_TAG, "Values": [group_name]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    peers = [
        Peer(i["InstanceId"], i["PrivateIpAddress"], i.get("InstanceLifecycle") == "spot")
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
        for r in page["Reservations"]
        for i in r["Instances"]
        if i["InstanceId"] in in_service and i.get("PrivateIpAddress")
    ]
    return assign_ranks(peers)


def wait_for_peers(
    autoscaling,
    ec2,
    group_name: str,
    nodes: int,
    timeout_s: float,
    poll_s: float = 10,
    clock=time.monotonic,
    sleep=time.sleep,
    teardown: bool = True,
) -> list[Peer]:
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


def container_argv(
    settings: dict,
    torchrun_argv,
    rank: int,
    output_dir: str,
    *,
    checkpoint_dir: str | None = None,
    hostfile: str | None = None,
    code_dir: str | None = None,
    name: str | None = None,
) -> list[str]:
    ckpt = checkpoint_dir or os.path.join(os.path.dirname(os.path.abspath(output_dir)), "checkpoints")
    env = {"AWS_DEFAULT_REGION": settings["region"]} if settings.get("region") else {}
    env.update(settings.get("environment") or {})
    env.update(
        {  # ours win: the training code relies on them
            "TRAINSTACK_DATASET_URI": settings.get("dataset_uri", ""),
            "TRAINSTACK_ARTIFACT_URI": settings["artifact_uri"],
            "TRAINSTACK_CHECKPOINT_URI": settings["checkpoint_uri"],
            "TRAINSTACK_NODE_RANK": str(rank),
            "TRAINSTACK_NNODES": str(settings["nodes"]),
            "SM_MODEL_DIR": MODEL_DIR,
        }
    )
    # --ipc host: NCCL/DataLoader outgrow docker's 64 MB /dev/shm; it makes --shm-size moot
    # --init: signals from `docker stop` reach torchrun, which passes them to the workers
    argv = [
        "docker",
        "run",
        "--rm",
        "--init",
        "--gpus",
        "all",
        "--network",
        "host",
        "--ipc",
        "host",
        "--ulimit",
        "memlock=-1",  # NCCL pins memory
        "-v",
        f"{output_dir}:{MODEL_DIR}",
        "-v",
        f"{ckpt}:{CHECKPOINT_DIR}",
    ]
    if name:  # so a timeout can `docker stop` the container, not only the client
        argv += ["--name", name]
    if code_dir:  # job.workdir, unpacked on the node: the container starts in it
        argv += ["-v", f"{code_dir}:{CODE_DIR}", "-w", CODE_DIR]
        env["TRAINSTACK_CODE_DIR"] = CODE_DIR
    if hostfile:
        argv += ["-v", f"{hostfile}:{HOSTFILE}:ro"]
        env["TRAINSTACK_HOSTFILE"] = HOSTFILE
    if settings.get("log_group"):  # non-blocking: a CloudWatch hiccup must not stall training
        argv += [
            "--log-driver",
            "awslogs",
            "--log-opt",
            "mode=non-blocking",
            "--log-opt",
            f"awslogs-region={settings['region']}",
            "--log-opt",
            f"awslogs-group={settings['log_group']}",
            "--log-opt",
            f"awslogs-stream={stream_prefix(settings)}node-{rank}-{os.uname().nodename}",
        ]
    for k, v in env.items():
        argv += ["-e", f"{k}={v}"]
    return argv + [settings["image"]] + list(torchrun_argv)


def stream_prefix(settings: dict) -> str:
    """A further job's log streams sort under `jobs/<job id>/` (the stack's own job's stay `node-*`)."""
    return f"jobs/{settings['job_id']}/" if settings.get("job_id") else ""


def docker_stop(name: str) -> None:
    subprocess.run(
        ["docker", "stop", "-t", str(STOP_GRACE_SECONDS), name],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_logged(argv, log_path: str, timeout_s: float = 0, stop=None) -> int:
    """Tee argv's output to stdout and log_path; return its exit code, or 124 when it ran past
    timeout_s: then stop() (docker stop of the container) ends it."""
    fired = threading.Event()
    with open(log_path, "ab") as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def on_timeout():
            fired.set()
            log.error("max runtime of %gs reached: stopping the container", timeout_s)
            (stop or p.terminate)()

        timer = threading.Timer(timeout_s, on_timeout) if timeout_s else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            assert p.stdout is not None  # stdout=PIPE
            for line in p.stdout:
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
                out.write(line)
                out.flush()
            code = p.wait()
        finally:
            if timer:
                timer.cancel()
        return EXIT_TIMEOUT if fired.is_set() else code


def fetch_code(s3, code_uri: str, dest: str) -> str:
    """Download the job.workdir bundle and unpack it into a fresh dest."""
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    with tempfile.TemporaryFile() as f:
        s3.download_fileobj(*split_s3_uri(code_uri), f)
        f.seek(0)
        with tarfile.open(fileobj=f, mode="r:gz") as t:  # "data": no absolute paths, no `..`
            if hasattr(tarfile, "data_filter"):  # Python >= 3.9.17: refuse what the "data" filter refuses
                t.extractall(dest, filter="data")
            else:
                t.extractall(dest)
    log.info("code from %s in %s", code_uri, dest)
    return dest


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
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc, indent=2).encode(), ContentType="application/json")


def run_marker(s3, artifact_uri: str, ok: bool, **doc) -> None:
    """<artifact_uri>_SUCCESS or _FAILED: the run command reads it to find the model. The run's result also
    goes into its run.json (merged: the driver may have written it), so a run nobody follows is recorded."""
    doc.update(status="succeeded" if ok else "failed", finished_at=now())
    put_json(s3, artifact_uri + ("_SUCCESS" if ok else "_FAILED"), doc)
    record = get_json(s3, artifact_uri + "run.json") or {}
    code = doc.get("exit_code", 0 if ok else 1)
    record.update(status=doc["status"], exit_code=0 if ok else 1, job_exit_code=code, finished_at=doc["finished_at"])
    record.update(reason="" if ok else doc.get("reason") or f"the training exited with code {code}", written_by="job")
    if ok:
        record["model_uri"] = doc.get("model_uri") or artifact_uri + "model/"
    try:
        put_json(s3, artifact_uri + "run.json", record)
    except AWS_ERRORS as e:
        log.warning("could not write run.json: %s", e)


def get_json(s3, uri: str):
    """The JSON object at uri, or None if absent or garbled (403 without ListBucket means absent)."""
    try:
        doc = json.loads(s3.get_object(Bucket=split_s3_uri(uri)[0], Key=split_s3_uri(uri)[1])["Body"].read())
    except (ValueError, *AWS_ERRORS):
        return None
    return doc if isinstance(doc, dict) else None


def done_markers(s3, artifact_uri: str, nnodes: int, run_id=None) -> dict[int, dict]:
    """rank -> done marker; with run_id, only markers of that run (artifact_uri is reused across runs)."""
    found = {}
    for rank in range(nnodes):
        doc = get_json(s3, f"{artifact_uri}logs/node-{rank}.done")
        if doc is not None and (run_id is None or doc.get("run_id") == run_id):
            found[rank] = doc
    return found


def wait_for_done_markers(
    s3,
    artifact_uri: str,
    nnodes: int,
    timeout_s: float,
    poll_s: float = 10,
    clock=time.monotonic,
    sleep=time.sleep,
    run_id=None,
) -> list[int]:
    """Bounded; returns the ranks still missing."""
    deadline = clock() + timeout_s
    while True:
        missing = sorted(set(range(nnodes)) - set(done_markers(s3, artifact_uri, nnodes, run_id)))
        if not missing or clock() >= deadline:
            return missing
        log.info("waiting for done markers of ranks %s", missing)
        sleep(max(0.0, min(poll_s, deadline - clock())))


def final_marker(s3, artifact_uri: str, run_id: str):
    """The leader's _SUCCESS or _FAILED of run_id, if written."""
    for name in ("_SUCCESS", "_FAILED"):
        doc = get_json(s3, artifact_uri + name)
        if doc is not None and doc.get("run_id") == run_id:
            return doc
    return None


def scale_group_to_zero(autoscaling, group_name: str) -> None:
    # MinSize too, or the group refuses; MaxSize stays so the next run only sets desired
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=group_name, MinSize=0, DesiredCapacity=0)
    log.info("scaled Auto Scaling group %s to zero", group_name)


def make_client(service: str, region: str | None):
    import boto3

    return boto3.client(service, region_name=region)


def terminate_self(autoscaling, instance_id: str) -> None:
    """A latecomer leaves without training and without the group launching another instance."""
    autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance_id, ShouldDecrementDesiredCapacity=True)
    log.info("terminating %s and decrementing the desired capacity", instance_id)


def run_node(s, me, members, rank, run_id, workdir, log_path, s3, run, code_dir=None) -> int:
    """Train in this node's slot, then upload model (leader, success only), log and done marker."""
    model_dir, ckpt_dir = (os.path.join(workdir, d) for d in ("model", "checkpoints"))
    shutil.rmtree(model_dir, ignore_errors=True)  # nothing of an earlier generation may pass as this model
    for d in (model_dir, ckpt_dir):
        os.makedirs(d, exist_ok=True)
    hostfile = write_hostfile(members, s["gpus_per_node"], os.path.join(workdir, "hostfile"))
    name = re.sub(r"[^a-zA-Z0-9_.-]", "-", f"trainstack-{run_id}")
    torchrun = torchrun_argv(
        s["command"],
        len(members),
        s["gpus_per_node"],
        members[0].private_ip,
        s["master_port"],
        run_id,
        s["max_restarts"],
        read_timeout=s["peer_timeout_seconds"],
    )
    argv = container_argv(
        s, torchrun, rank, model_dir, checkpoint_dir=ckpt_dir, hostfile=hostfile, code_dir=code_dir, name=name
    )
    log.info(
        "node slot %d of %d, leader %s, run %s; running %s", rank, len(members), members[0].private_ip, run_id, argv
    )
    started = now()
    try:  # the user data did `docker login` for ECR images
        code = run(argv, log_path, s["max_runtime_seconds"], lambda: docker_stop(name))
    except Exception:  # still report, so the leader need not time out
        log.exception("could not run the training container")
        code = 1
    log.info("training exited with code %d", code)
    art = s["artifact_uri"]
    if rank == 0 and code == 0:  # a failed or stopped run's model may be half-written: never publish it
        upload_dir(s3, model_dir, art + "model/")
    s3.upload_file(log_path, *split_s3_uri(f"{art}logs/node-{rank}.log"))
    put_json(
        s3,
        f"{art}logs/node-{rank}.done",
        {
            "rank": rank,
            "exit_code": code,
            "instance_id": me.instance_id,
            "run_id": run_id,
            "private_ip": me.private_ip,
            "started_at": started,
            "finished_at": now(),
        },
    )
    return code


def finish_run(s, members, run_id, code, group, s3, clock, sleep) -> bool:
    """Leader: wait for all slots, then write _SUCCESS or _FAILED."""
    art, n = s["artifact_uri"], len(members)
    missing = wait_for_done_markers(s3, art, n, s["done_timeout_seconds"], clock=clock, sleep=sleep, run_id=run_id)
    markers = done_markers(s3, art, n, run_id)
    failed = {r: m.get("exit_code") for r, m in sorted(markers.items()) if m.get("exit_code") != 0}
    ok = code == 0 and not missing and not failed
    overall = code or next(iter(failed.values()), 1 if missing else 0)
    run_marker(
        s3,
        art,
        ok,
        run_id=run_id,
        exit_code=overall,
        missing_ranks=missing,
        model_uri=art + "model/" if ok else None,
        failed_ranks={str(r): c for r, c in failed.items()},
        group=group,
        instances=sorted({m.get("instance_id") for m in markers.values()}),
    )
    log.info("run %s, exit code %s, missing ranks %s", "ok" if ok else "failed", overall, missing)
    return ok


def wait_for_leader(s, leader: Peer, run_id, asg, ec2, group, s3, clock, sleep, poll_s: float = 10) -> str:
    """Non-leader after training: "final" (leader's marker), "lost" (leader gone) or "timeout"."""
    deadline = clock() + s["leader_timeout_seconds"]
    while True:
        if final_marker(s3, s["artifact_uri"], run_id):
            return "final"
        try:
            if leader.instance_id not in {p.instance_id for p in ready_peers(asg, ec2, group)}:
                return "lost"
        except AWS_ERRORS as e:
            log.warning("listing peers failed: %s", e)
        if clock() >= deadline:
            return "timeout"
        sleep(max(0.0, min(poll_s, deadline - clock())))


def join_slot(s, me, started, asg, ec2, group, s3, clock, sleep, poll_s: float = 10):
    """A node not among a live run's members: the slot of a member that left, None (excess, or the
    run ended first) or FRESH (the leader left too: the survivors start a new generation, which
    needs this node). Waits a while: a spot-interrupted member can stay InService briefly."""
    members = [Peer(*p) for p in started["peers"]]
    deadline = clock() + s["peer_timeout_seconds"]
    while True:
        if final_marker(s3, s["artifact_uri"], started["run_id"]):
            return None
        try:
            alive = ready_peers(asg, ec2, group)
        except AWS_ERRORS as e:
            log.warning("listing peers failed: %s", e)
            alive = []
        ids = {p.instance_id for p in alive}
        if started["leader_instance_id"] not in ids and alive:
            return FRESH
        vacant = [r for r, p in enumerate(members) if p.instance_id not in ids]
        newcomers = [
            p.instance_id
            for p in assign_ranks(p for p in alive if p.instance_id not in {m.instance_id for m in members})
        ]
        if me.instance_id in newcomers and newcomers.index(me.instance_id) < len(vacant):
            return vacant[newcomers.index(me.instance_id)]
        if clock() >= deadline:
            return None
        sleep(max(0.0, min(poll_s, deadline - clock())))


def live_run(s, s3, asg, ec2, group):
    """The run-started marker, if its leader still serves in the group (else it is stale)."""
    started = get_json(s3, s["artifact_uri"] + STARTED)
    if not started:
        return None
    try:
        ids = {p.instance_id for p in ready_peers(asg, ec2, group)}
    except AWS_ERRORS:
        return None
    return started if started.get("leader_instance_id") in ids else None


def one_generation(s, me, group, workdir, log_path, clients, run, clock, sleep, code_dir):
    """Start or join one run. Returns (outcome, exit code); outcome is "done", "leave" or "lost"."""
    ec2, asg, s3 = clients["ec2"], clients["autoscaling"], clients["s3"]
    art = s["artifact_uri"]
    started = live_run(s, s3, asg, ec2, group)
    if started and final_marker(s3, art, started["run_id"]):
        log.info("run %s already ended; %s is a latecomer", started["run_id"], me.instance_id)
        return "leave", 0
    if started:
        members = [Peer(*p) for p in started["peers"]]
        run_id = started["run_id"]
        rank = rank_of(members, me.instance_id)
        if rank is None:
            rank = join_slot(s, me, started, asg, ec2, group, s3, clock, sleep)
            if rank is None:
                log.info("%s found no vacant slot in run %s", me.instance_id, run_id)
                return "leave", 0
            if rank == FRESH:
                log.info("the leader of run %s left; starting afresh with the survivors", run_id)
                started = None
            else:
                log.info("%s replaces slot %d of run %s", me.instance_id, rank, run_id)
    if not started:
        members = wait_for_peers(
            asg,
            ec2,
            group,
            s["nodes"],
            s["peer_timeout_seconds"],
            clock=clock,
            sleep=sleep,
            teardown=bool(s["teardown"]),
        )
        rank = rank_of(members, me.instance_id)
        if rank is None:  # e.g. the group has more instances than nodes
            log.info("%s is not one of the %d chosen nodes", me.instance_id, len(members))
            return "leave", 0
        # Every member names the run alike without asking the leader: leaders are new instances.
        run_id = members[0].instance_id
        if rank == 0:  # for latecomers: who runs, and where the rendezvous is
            put_json(
                s3,
                art + STARTED,
                {
                    "run_id": run_id,
                    "leader_instance_id": me.instance_id,
                    "peers": [list(p) for p in members],
                    "nodes": len(members),
                    "started_at": now(),
                },
            )
    code = run_node(s, me, members, rank, run_id, workdir, log_path, s3, run, code_dir)
    if rank == 0:
        finish_run(s, members, run_id, code, group, s3, clock, sleep)
        return "done", code
    outcome = wait_for_leader(s, members[0], run_id, asg, ec2, group, s3, clock, sleep)
    log.info("leader %s: %s", members[0].instance_id, outcome)
    return ("lost" if outcome == "lost" else "done"), code


PULL_ATTEMPTS = 3
PULL_TIMEOUT_SECONDS = 1800  # a 10-15 GiB training image on a slow link


def pull_image(image: str, log_path: str, run=None, sleep=time.sleep) -> int:
    """`docker pull` the training image before this node waits for its peers, so the pull (minutes for a
    10-15 GiB image) never lands between the rendezvous of the nodes: every node then starts torchrun
    within a poll interval of the others. A failed pull is retried, then left to `docker run` to report."""
    run = run or run_logged
    code = 1
    for attempt in range(1, PULL_ATTEMPTS + 1):
        code = run(["docker", "pull", image], log_path, PULL_TIMEOUT_SECONDS)
        if code == 0:
            return 0
        log.warning("docker pull %s failed (exit %s, attempt %d/%d)", image, code, attempt, PULL_ATTEMPTS)
        sleep(10 * attempt)
    return code


def bootstrap(s, me, workdir, log_path, clients, run, clock, sleep, pull=None) -> int:
    """This node's whole life: join or start a run, then leave the group at zero (or leave it)."""
    ec2, asg, s3 = clients["ec2"], clients["autoscaling"], clients["s3"]
    art, teardown = s["artifact_uri"], bool(s["teardown"])
    group = s["group"] or group_name_of(ec2, me.instance_id, sleep=sleep)
    log.info("instance %s (%s) in group %s; %s node(s) wanted", me.instance_id, me.private_ip, group, s["nodes"])
    left = False
    try:
        code_dir = fetch_code(s3, s["code_uri"], os.path.join(workdir, "code")) if s["code_uri"] else None
        (pull or pull_image)(s["image"], log_path)
        for generation in range(1, s["max_generations"] + 1):
            log.info("generation %d", generation)
            outcome, code = one_generation(s, me, group, workdir, log_path, clients, run, clock, sleep, code_dir)
            if outcome == "leave":  # never trained: go without touching the others' run
                left = True
                terminate_self(asg, me.instance_id)
                return code
            if outcome == "done":
                return code
        log.error(
            "the leader was lost %d times; giving up (checkpoints stay in %s)",
            s["max_generations"],
            s["checkpoint_uri"],
        )
        run_marker(s3, art, False, reason="leader lost", exit_code=1, group=group, instance_id=me.instance_id)
        return 1
    except PeerTimeout as e:
        log.error("%s", e)
        run_marker(
            s3,
            art,
            False,
            reason="peer_timeout",
            message=str(e),
            exit_code=EXIT_PEER_TIMEOUT,
            missing_ranks=list(range(e.found, e.nodes)),
            group=group,
            instance_id=me.instance_id,
        )
        return EXIT_PEER_TIMEOUT
    finally:  # every node that trained (or failed to) ends with the group at zero
        if teardown and not left:
            scale_group_to_zero(asg, group)
        mark_finished(workdir)


def mark_finished(workdir: str) -> None:
    with open(os.path.join(workdir, FINISHED), "w") as f:
        f.write(now() + "\n")


def emergency_teardown(settings_path: str, workdir: str, region: str | None, clients) -> None:
    """A fatal error before bootstrap() could clean up (settings, IMDS, boto3): scale to zero from
    whatever the settings file still tells us; the user data falls back to the aws CLI after us."""
    try:
        with open(settings_path) as f:
            raw = json.load(f)
        if raw.get("teardown", True) is False or not raw.get("group"):
            return
        asg = (clients or {}).get("autoscaling") or make_client("autoscaling", raw.get("region") or region)
        scale_group_to_zero(asg, raw["group"])
        mark_finished(workdir)
        s3 = (clients or {}).get("s3") or make_client("s3", raw.get("region") or region)
        run_marker(
            s3,
            raw["artifact_uri"].rstrip("/") + "/",
            False,
            reason="bootstrap error, see the node's /var/log/trainstack-bootstrap.log",
            exit_code=1,
            group=raw["group"],
        )
    except Exception:
        log.exception("emergency teardown failed")


def main(
    argv=None, *, clients=None, identity=None, run=run_logged, clock=time.monotonic, sleep=time.sleep, pull=None
) -> int:
    """Returns this node's training exit code. clients: {"ec2", "autoscaling", "s3"} boto3
    clients; run(argv, log_path, timeout_s, stop) -> exit code runs the training container;
    pull(image, log_path) -> exit code pulls its image (default `docker pull`, see pull_image)."""
    p = argparse.ArgumentParser()
    p.add_argument("--settings", default="/etc/trainstack/run.json")
    p.add_argument("--workdir", default="/opt/trainstack/run")
    a = p.parse_args(argv)
    os.makedirs(a.workdir, exist_ok=True)
    log_path = os.path.join(a.workdir, "node.log")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout), logging.FileHandler(log_path)]
    for h in handlers:
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(h)
    log.setLevel(logging.INFO)
    region = None
    try:
        s = load_settings(a.settings)
        region = s["region"] or None
        me = identity or instance_identity()
        s["region"] = s["region"] or me.region
        clients = clients or {k: make_client(k, s["region"]) for k in ("ec2", "autoscaling", "s3")}
        job = current_job(clients["s3"], s["artifact_uri"], sleep=sleep)
        if job:
            s = {**load_settings(a.settings, job), "region": s["region"]}
            log.info("job %s (%s)", s["job_id"], CURRENT_JOB)
            a.settings = os.path.join(a.workdir, "job.json")  # what an emergency teardown reports on
            with open(a.settings, "w") as f:
                json.dump(s, f)
        return bootstrap(s, me, a.workdir, log_path, clients, run, clock, sleep, pull)
    except Exception:
        log.exception("bootstrap failed")
        if not os.path.exists(os.path.join(a.workdir, FINISHED)):
            emergency_teardown(a.settings, a.workdir, region, clients)
        return 1
    finally:  # main() may run many times in one process (tests)
        for h in handlers:
            log.removeHandler(h)
            h.close()


if __name__ == "__main__":
    sys.exit(main())
