"""Ec2TrainingCluster: the seed article's five manual EC2 steps, automated.

`pulumi up` starts `nodes` GPU instances on the Deep Learning AMI. Each runs the bootstrap
shipped in `scripts/ec2_bootstrap.py` (embedded in its user data): fetch the job.workdir code,
wait for the peers (or join a running run in a lost member's slot), elect the leader (on-demand
first, then lowest private IP), run the training container with elastic torchrun, upload the
model (on success) and logs to the run's artifact prefix, and scale the group to zero. The
group has a fixed name, so its node policy exists (and names it) before the first node boots.
"""

from __future__ import annotations

import ast
import base64
import gzip
import io
import json
import re
import shlex
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import pulumi
import pulumi_aws as aws

from trainstack.components.gpu_autoscaling_group import SSM_CORE, GpuAutoScalingGroup
from trainstack.components.training_cluster import TrainingClusterArgs, gpu_group_args, training_log_group
from trainstack.model import iam_documents as docs
from trainstack.model.run_locations import RunLocations, data_access_policy

# The node bootstrap and the one model module it imports, shipped together in the user data.
BOOTSTRAP_SOURCE = resources.files("trainstack.scripts").joinpath("ec2_bootstrap.py")
NODE_MODULES = {"trainstack/model/torchrun.py": resources.files("trainstack.model").joinpath("torchrun.py")}
FINISHED = "finished"  # scripts/ec2_bootstrap.py FINISHED, in its --workdir
USER_DATA_LIMIT = 16 * 1024  # EC2's limit on raw user data


def group_name(owner: str, stack: str) -> str:
    """The GPU group's fixed name: the node policy can name it before it exists, and a node can
    scale it to zero even when it cannot look itself up. Unique per owner/stack/region."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"trainstack-{owner}-{stack}-gpu")[:255]


def bootstrap_settings(
    args: Ec2TrainingClusterArgs,
    *,
    locations: RunLocations,
    log_group: str | None = None,
    group: str | None = None,
    code_uri: str | None = None,
) -> dict[str, Any]:
    """The JSON the bootstrap reads (keys are its contract; see scripts/ec2_bootstrap.py)."""
    return {
        "region": args.region,
        "nodes": args.nodes,
        "gpus_per_node": args.gpus_per_node,
        "image": args.image,
        "command": list(args.command),
        "environment": dict(args.environment),
        "dataset_uri": locations.dataset_uri,
        "artifact_uri": locations.artifact_uri,
        "checkpoint_uri": locations.checkpoint_uri,
        "master_port": args.master_port,
        "peer_timeout_seconds": args.peer_timeout_minutes * 60,
        "done_timeout_seconds": 600,
        "max_runtime_seconds": args.max_runtime_seconds,
        "log_group": log_group,
        "teardown": True,
        "group": group,
        "code_uri": code_uri,
    }


def _ecr_registry(image: str) -> str | None:
    registry = image.split("/", 1)[0]
    return registry if ".dkr.ecr." in registry else None


def minify(source: str) -> str:
    """The same module without docstrings and comments, so it fits in user data."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\n"


def node_files(bootstrap_source: str | None = None) -> dict[str, str]:
    """What the user data unpacks into /opt/trainstack: the bootstrap and the package path of the model
    module it imports (empty `__init__.py`s: nothing else of trainstack runs on the node)."""
    files = {
        "ec2_bootstrap.py": bootstrap_source if bootstrap_source is not None else minify(BOOTSTRAP_SOURCE.read_text())
    }
    files.update({"trainstack/__init__.py": "", "trainstack/model/__init__.py": ""})
    files.update({path: minify(src.read_text()) for path, src in NODE_MODULES.items()})
    return files


def pack(files: Mapping[str, str]) -> str:
    """A deterministic tar.gz of `files` (sorted, mtime 0, root-owned), base64-encoded."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(files):
            data = files[path].encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(gzip.compress(raw.getvalue(), mtime=0)).decode()


def render_user_data(settings: Mapping[str, Any], bootstrap_source: str | None = None) -> str:
    """Cloud-init shell script: install the bootstrap, log in to ECR, start the bootstrap; if the
    bootstrap dies without doing its end-of-life step, scale the group to zero with the AWS CLI."""
    packed = pack(node_files(bootstrap_source))
    region = settings["region"]
    registry = _ecr_registry(settings["image"])
    login = (
        (
            f"aws ecr get-login-password --region {shlex.quote(region)} | "
            f"docker login --username AWS --password-stdin {shlex.quote(registry)}"
        )
        if registry
        else "true  # public registry: no login"
    )
    script = f"""#!/bin/bash
# trainstack ec2 node bootstrap (generated; see scripts/ec2_bootstrap.py)
set -euo pipefail
mkdir -p /opt/trainstack /etc/trainstack
echo '{packed}' | base64 -d | tar -xz -C /opt/trainstack
cat > /etc/trainstack/run.json <<'TRAINSTACK_JSON'
{json.dumps(dict(settings), sort_keys=True)}
TRAINSTACK_JSON
# `|| true`: without boto3 the bootstrap fails at once and its fallback below still scales the group to zero.
python3 -c 'import boto3' 2>/dev/null || dnf install -y python3-boto3 || python3 -m pip install boto3 || true
systemctl start docker || true
for attempt in 1 2 3 4 5; do {login} && break || sleep 10; done
nohup bash -c {shlex.quote(_run_and_fall_back(settings))} >> /var/log/trainstack-bootstrap.log 2>&1 &
"""
    if len(script.encode()) > USER_DATA_LIMIT:
        raise ValueError(f"EC2 user data is {len(script.encode())} bytes, over the {USER_DATA_LIMIT}-byte limit")
    return script


def _run_and_fall_back(settings: Mapping[str, Any]) -> str:
    run = "python3 /opt/trainstack/ec2_bootstrap.py --settings /etc/trainstack/run.json"
    group = settings.get("group")
    if not group or settings.get("teardown") is False:
        return run
    # The bootstrap touches `finished` once it scaled the group to zero or left it; if it never got
    # that far (no python3/boto3, a crash), no GPU may keep running: the DLAMI has the AWS CLI.
    return (
        f"{run}; test -e /opt/trainstack/run/{FINISHED} || aws autoscaling update-auto-scaling-group "
        f"--region {shlex.quote(settings['region'])} --auto-scaling-group-name {shlex.quote(group)} "
        "--min-size 0 --desired-capacity 0"
    )


@dataclass(frozen=True)
class Ec2TrainingClusterArgs(TrainingClusterArgs):
    """`TrainingClusterArgs` (the shared, documented fields) plus the torchrun rendezvous of the nodes."""

    # The port rank 0 serves the torchrun rendezvous on (inside the cluster security group).
    master_port: int = 29500
    # Minutes the nodes wait for each other (each boots from zero, maybe minutes apart) before giving up.
    peer_timeout_minutes: int = 15

    def __post_init__(self):
        super().__post_init__()
        if not self.command:
            raise ValueError("command is empty: Ec2TrainingCluster runs it under torchrun on every node; give it")
        if self.nodes > self.max_instances:
            raise ValueError(f"nodes = {self.nodes}: more than max_instances ({self.max_instances})")
        if not 1 <= self.master_port <= 65535:
            raise ValueError(f"master_port = {self.master_port}: must be a TCP port, 1-65535")
        if self.peer_timeout_minutes < 1:
            raise ValueError(f"peer_timeout_minutes = {self.peer_timeout_minutes}: must be at least 1")


class Ec2TrainingCluster(pulumi.ComponentResource):
    capacity: GpuAutoScalingGroup
    log_group: aws.cloudwatch.LogGroup

    def __init__(self, name: str, args: Ec2TrainingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:compute:Ec2TrainingCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.log_group = training_log_group(name, args, self)
        group = group_name(args.owner, args.stack)
        user_data = pulumi.Output.all(args.locations, self.log_group.name, args.code_uri).apply(
            lambda a: render_user_data(
                bootstrap_settings(args, locations=a[0], log_group=a[1], group=group, code_uri=a[2])
            )
        )
        repo = docs.ecr_repository_arn(args.image)
        group_arn = docs.autoscaling_group_arn(args.region, args.account_id, group)
        policy = pulumi.Output.all(args.locations, args.kms_key_arn, self.log_group.arn).apply(
            lambda a: json.dumps(
                docs.merge(
                    data_access_policy(a[0], a[1], args.region),
                    docs.ec2_node(group_arn),
                    docs.write_logs(a[2]),
                    docs.pull_image(repo),
                )
            )
        )
        # Creating the group starts the run; the nodes scale it back to zero when training ends. The
        # node policy is created inside, before the group: the first boot already needs it.
        self.capacity = GpuAutoScalingGroup(
            f"{name}-gpu",
            replace(
                gpu_group_args(
                    args,
                    kind="ec2",
                    user_data=user_data,
                    desired_capacity=args.nodes,
                    managed_policy_arns=(docs.aws_managed_policy(SSM_CORE, docs.partition_of(args.region)),),
                ),
                group_name=group,
                node_policy=policy,
            ),
            opts=child,
        )
        self.register_outputs({"groupName": self.capacity.group.name, "logGroup": self.log_group.name})
