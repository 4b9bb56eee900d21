"""A fifth backend, declared outside trainstack: everything it is lives in this one module.

`spotgroup`: one spot GPU Auto Scaling group started at the job's node count, whose user data runs the
training container and then scales the group to zero (a much smaller ec2 backend). It is the test of
"adding a backend touches its own files plus one registry entry": the declaration (`BACKEND`), the typed
outputs its program writes and its follower reads (`SpotGroupOutputs`), the program (`build`) and the
follower (`SpotGroupFollower`). `tests/programs/test_fake_backend.py` registers it with one
`backends.register(BACKEND)` and plans a stack of it through `trainstack plan`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainstack.backends import (
    GPU_BOOT,
    AmiRow,
    AmiSource,
    Backend,
    Capabilities,
    ClusterOutputs,
    CommandRule,
    IdleCost,
    SpotMode,
    StackOutputs,
)
from trainstack.backends.ec2 import DLAMI_BASE_OSS_AL2023

NAME = "spotgroup"


@dataclass(frozen=True)
class SpotGroupOutputs(StackOutputs):
    """What a spotgroup cluster stack exports besides `ClusterOutputs`."""

    group_name: str  # the spot GPU group: the job's liveness, `stop` scales it to zero
    group_arn: str
    ami_id: str


BACKEND = Backend(
    name=NAME,
    summary="one spot GPU Auto Scaling group whose nodes run the container and scale the group to zero (a test)",
    capabilities=Capabilities(
        multi_node=False,
        spot=SpotMode.MIXED,
        elastic_restart=False,
        placement_group=False,
        ami=AmiSource.TABLE,
        command=CommandRule.NEVER,
    ),
    program=__name__,  # `build` below
    follower=f"{__name__}:SpotGroupFollower",
    job_resources=("aws:autoscaling/group:Group",),
    started_by="aws:autoscaling/group:Group",
    after_up=(GPU_BOOT,),
    outputs=SpotGroupOutputs,
    idle=IdleCost.NOTHING,
    idle_note="Idle: the spot group sits at zero instances.",
    ami_rows=tuple(
        AmiRow(NAME, arch, DLAMI_BASE_OSS_AL2023, "Deep Learning Base OSS AMI (AL2023)", "open", None, "supported", "-")
        for arch in ("Ampere", "Ada Lovelace", "Hopper")
    ),
)


# ------------------------------------------------------------------------------------------ the program


def user_data(image: str, command: tuple[str, ...], region: str, group: str) -> str:
    run = " ".join(shlex.quote(a) for a in ["docker", "run", "--gpus", "all", "--rm", image, *command])
    return (
        "#!/bin/bash\n"
        f"{run}\n"
        f"aws autoscaling update-auto-scaling-group --region {shlex.quote(region)} "
        f"--auto-scaling-group-name {shlex.quote(group)} --min-size 0 --desired-capacity 0\n"
    )


def build(ctx: Any) -> Any:
    """The program: what `trainstack.programs.backends.build` imports through `BACKEND.program`."""
    import pulumi

    from trainstack.components import auto_teardown as teardown
    from trainstack.components.gpu_autoscaling_group import GpuAutoScalingGroup, GpuAutoScalingGroupArgs
    from trainstack.model import amis
    from trainstack.programs.backends import BackendResult

    c = ctx.cluster
    group_name = f"trainstack-{c.owner}-{ctx.stack}-spot"
    gpus = GpuAutoScalingGroup(
        "spot",
        GpuAutoScalingGroupArgs(
            instance_types=c.gpu.instance_types,
            subnet_ids=ctx.subnet_ids,
            security_group_id=ctx.security_group_id,
            user_data=user_data(c.job.image, c.job.command, ctx.region, group_name),
            max_size=c.gpu.max_instances,
            ami_ssm_parameter=amis.parameter_for(NAME, [a.name for a in c.gpu.architectures]),
            desired_capacity=c.job.nodes,
            spot_percent=c.gpu.spot_percent,
            group_name=group_name,
            tags=ctx.tags,
        ),
    )
    group = gpus.group
    return BackendResult(
        outputs=SpotGroupOutputs.to_outputs(group_name=group.name, group_arn=group.arn, ami_id=gpus.ami_id),
        teardown=(teardown.scale_group_to_zero(group.name, pulumi.Output.from_input(group.arn)),),
    )


# ------------------------------------------------------------------------------------------ the follower


class SpotGroupFollower:
    """Follows the group: running while an instance is InService, done when the group is back at zero."""

    def __init__(self, outputs: Mapping[str, Any], session: Any):
        self.stack = ClusterOutputs.from_outputs(outputs)
        self.o = SpotGroupOutputs.from_outputs(outputs)
        self.autoscaling = session.client("autoscaling", region_name=self.stack.region)

    def submit(self) -> None:
        """Nothing to start: creating the group started the job."""

    def poll(self) -> Any:
        from trainstack.run.follow import PENDING, RUNNING, SUCCEEDED, JobState

        group = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.o.group_name])[
            "AutoScalingGroups"
        ][0]
        if group["DesiredCapacity"] == 0:
            return JobState(SUCCEEDED, "the group scaled itself to zero")
        in_service = [i for i in group.get("Instances", []) if i.get("LifecycleState") == "InService"]
        return JobState(RUNNING, f"{len(in_service)} InService") if in_service else JobState(PENDING, "launching")

    def tail(self) -> list[str]:
        return []

    def stop(self) -> None:
        self.autoscaling.update_auto_scaling_group(AutoScalingGroupName=self.o.group_name, MinSize=0, DesiredCapacity=0)

    def stalled(self) -> str:
        return json.dumps({"group": self.o.group_name, "why": "no instance InService"})

    def model_uri(self) -> str | None:
        return self.stack.model_uri
