"""The typed stack-output contract (trainstack/backends/outputs.py): what each program writes is exactly what
its declaration says and what the readers (followers, `trainstack run`/`down`, `trainstack sagemaker start`) read;
a renamed output fails here, when the stack is evaluated, never in a run."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest

from tests.helpers import ROOT, cluster_config, stack_outputs
from trainstack import backends
from trainstack.backends.ecs import EcsOutputs
from trainstack.backends.eks import EksOutputs
from trainstack.backends.outputs import camel

CLUSTER_STACKS = ("dev-ec2", "dev-ecs", "dev-eks", "dev-eks-shared", "dev-sagemaker")


@pytest.mark.parametrize("stack", CLUSTER_STACKS)
def test_each_programs_outputs_are_exactly_what_its_declaration_reads(example_plans, stack):
    outputs = example_plans[stack].run.outputs
    common, own = backends.read_outputs(outputs)
    declared = backends.get(common.backend)
    assert isinstance(own, declared.outputs) and common.backend == example_plans[stack].config.cluster.backend
    # Nothing exported that no reader knows of, nothing required that the program forgets (an optional output,
    # such as eks's idle stop, only where the stack has it).
    known = set(backends.ClusterOutputs.output_names()) | set(declared.outputs.output_names())
    required = {camel(f) for cls in (backends.ClusterOutputs, declared.outputs) for f in cls.required()}
    assert required <= set(outputs) <= known
    assert own.as_outputs() == {k: outputs[k] for k in declared.outputs.output_names() if k in outputs}


def test_a_renamed_output_in_a_program_fails_the_stacks_evaluation(run_stack, tmp_path, monkeypatch):
    """The ecs program with `task_definition_arn=` renamed: the stack no longer evaluates, and says why."""
    source = (ROOT / "trainstack" / "programs" / "backends" / "ecs.py").read_text()
    assert source.count("task_definition_arn=") == 1
    (tmp_path / "renamed_ecs_program.py").write_text(source.replace("task_definition_arn=", "task_definition="))
    monkeypatch.syspath_prepend(str(tmp_path))
    original = backends.get("ecs")
    backends.register(dataclasses.replace(original, program="renamed_ecs_program"))
    try:
        with pytest.raises(
            Exception,
            match=r"EcsOutputs.to_outputs: unknown output field\(s\) task_definition; "
            "missing task_definition_arn",
        ):
            run_stack(cluster_config("ecs"), stack="dev-ecs")
    finally:
        backends.register(original)
        sys.modules.pop("renamed_ecs_program", None)
    assert backends.get("ecs").program == "trainstack.programs.backends.ecs"


def test_a_program_that_writes_a_raw_dict_is_refused_by_name(run_stack, monkeypatch):
    """A backend program bypassing its outputs class (say, a hand-written dict with one key misspelled)."""
    from trainstack.programs.backends import ecs as program

    real = program.build

    def build(ctx):
        result = real(ctx)
        outputs = dict(result.outputs)
        outputs["taskDefinition"] = outputs.pop("taskDefinitionArn")
        return dataclasses.replace(result, outputs=outputs)

    monkeypatch.setattr(program, "build", build)
    with pytest.raises(
        Exception,
        match="backend ecs exported outputs that do not match EcsOutputs: undeclared "
        "taskDefinition; missing taskDefinitionArn",
    ):
        run_stack(cluster_config("ecs"), stack="dev-ecs")


def ecs_outputs() -> dict:
    own = EcsOutputs(
        cluster_name="c",
        cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/c",
        capacity_provider_name="cp",
        task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/t:1",
        container_name="training",
        log_group_name="/trainstack/bob/x",
        task_role_arn="arn:aws:iam::123456789012:role/task",
        execution_role_arn="arn:aws:iam::123456789012:role/exec",
        node_role_arn="arn:aws:iam::123456789012:role/node",
        group_name="g",
        group_arn="arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1:autoScalingGroupName/g",
        ami_id="ami-0abcdef1234567890",
        run_task_command="aws ecs run-task ...",
    )
    return stack_outputs(own)


def test_a_stack_missing_an_output_is_named_with_its_field_backend_and_fix():
    outputs = ecs_outputs()
    del outputs["taskDefinitionArn"]
    with pytest.raises(backends.OutputsError) as err:
        EcsOutputs.from_outputs(outputs)
    assert str(err.value).startswith(
        "the stack has no output `taskDefinitionArn` (EcsOutputs.task_definition_arn), which the ecs backend must export"
    )
    assert "run `pulumi up` on the stack" in str(err.value)
    # The follower fails the same way, before any AWS call.
    from trainstack.run.follow import follower_for

    with pytest.raises(backends.OutputsError, match="`taskDefinitionArn`"):
        follower_for(outputs, session=None)


def test_what_every_cluster_stack_exports_is_named_too():
    outputs = ecs_outputs()
    del outputs["teardownRoleArn"], outputs["modelUri"]
    with pytest.raises(
        backends.OutputsError,
        match=r"no output `modelUri` \(ClusterOutputs.model_uri\), "
        r"`teardownRoleArn` \(ClusterOutputs.teardown_role_arn\), which every cluster stack must export",
    ):
        backends.read_outputs(outputs)
    platform = {"region": "us-east-1", "vpcId": "vpc-1"}  # a platform stack: no `backend`
    with pytest.raises(backends.OutputsError, match="`backend` \\(ClusterOutputs.backend\\)"):
        backends.read_outputs(platform)


def test_a_value_of_the_wrong_type_is_named():
    outputs = ecs_outputs()
    outputs["clusterName"] = ["c"]
    with pytest.raises(
        backends.OutputsError,
        match=r"stack output `clusterName` of the ecs backend is list \['c'\], "
        r"not str \(EcsOutputs.cluster_name\)",
    ):
        EcsOutputs.from_outputs(outputs)
    eks = {"nodeGroupNames": "ng-1"}  # a string where a list belongs
    with pytest.raises(backends.OutputsError, match="`nodeGroupNames` .* is str 'ng-1', not list"):
        EksOutputs.from_outputs({**eks, **{n: "x" for n in EksOutputs.output_names() if n != "nodeGroupNames"}})


def test_to_outputs_takes_exactly_the_declared_fields():
    with pytest.raises(TypeError, match=r"unknown output field\(s\) group; missing group_arn, group_name"):
        backends.get("ec2").outputs.to_outputs(
            group="g",
            node_role_arn="r",
            log_group_name="l",
            ami_id="a",
            launch_template_id="lt",
            success_marker_uri="s",
        )
    # An optional output (codeUri without a workdir) is left out, not exported as null.
    assert "codeUri" not in backends.ClusterOutputs.to_outputs(
        **{f.name: "x" for f in dataclasses.fields(backends.ClusterOutputs) if f.name != "code_uri"}, code_uri=None
    )


def test_a_backend_may_not_redeclare_what_every_cluster_stack_exports():
    @dataclasses.dataclass(frozen=True)
    class Clashing(backends.StackOutputs):
        region: str

    with pytest.raises(TypeError, match="Clashing redeclares region, which every cluster stack exports already"):
        dataclasses.replace(backends.get("ec2"), name="clash", outputs=Clashing)


@pytest.mark.parametrize("stack", ("platform", "platform-eks", "platform-usw2"))
def test_each_platform_exports_exactly_what_cluster_stacks_read(example_plans, stack):
    outputs = example_plans[stack].run.outputs
    platform = backends.PlatformOutputs.from_outputs(outputs)
    optional = set() if platform.eks else {"eks"}  # only a platform with a shared EKS cluster exports it
    assert set(outputs) == set(backends.PlatformOutputs.output_names()) - optional
    assert platform.region == example_plans[stack].config.region and set(platform.buckets) >= {"raw", "artifacts"}


def test_a_platform_without_a_catalog_exports_a_null_it_may_have(run_stack):
    from trainstack.plan.offline import run_offline
    from trainstack.programs.program import main

    config = {"aws:region": "us-east-1", "trainstack:kind": "platform", "trainstack:dataLake": {"glueDatabase": False}}
    outputs = run_offline(main, config=config, stack="bare").outputs
    assert "glueDatabase" in outputs and outputs["glueDatabase"] is None  # exported, as null
    assert backends.PlatformOutputs.from_outputs(outputs).glue_database is None
    del outputs["glueDatabase"]  # ... but never missing
    with pytest.raises(
        backends.OutputsError,
        match=r"`glueDatabase` \(PlatformOutputs.glue_database\), which "
        "every platform stack must export",
    ):
        backends.PlatformOutputs.from_outputs(outputs)


@pytest.mark.parametrize("stack", ("platform", "platform-eks"))
def test_a_platform_exports_no_secret(stack):
    """Cluster programs read the platform through `platform_output`, whose values are as secret as the
    platform's whole outputs map: the same as `require_output`'s only while no platform output is secret."""
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.sync_await import _sync_await

    from trainstack.plan.offline import run_offline
    from trainstack.plan.planner import load_raw_config
    from trainstack.programs.program import main

    project, raw = load_raw_config(stack, ROOT)
    exports: dict[str, Any] = {}

    def program() -> None:
        main()
        exports.update(settings.get_root_resource().outputs)  # the stack's exports, still Outputs

    run_offline(program, config=raw, project=project, stack=stack)
    secret = {key: _sync_await(pulumi.Output.from_input(value).is_secret()) for key, value in exports.items()}
    assert set(secret) == set(backends.PlatformOutputs.output_names()) - ({"eks"} if stack == "platform" else set())
    assert not [key for key, is_secret in secret.items() if is_secret]


def test_platform_output_reads_what_require_output_and_get_output_read(platform_outputs):
    """The same value, dependency (the StackReference), knownness and secretness as pulumi's own readers; a
    missing required output fails the program as `require_output` fails it (KeyError naming it)."""
    import pulumi
    from pulumi.runtime.sync_await import _sync_await

    from trainstack.plan.offline import run_offline
    from trainstack.programs.backends import platform_output

    ref = "organization/trainstack/platform"
    without_eks = {k: v for k, v in platform_outputs.items() if k != "eks"}

    def run(read_all) -> Any:
        read: dict[str, Any] = {}

        def program() -> None:
            read_all(pulumi.StackReference("platform", stack_name=ref), read)

        run_offline(program, config={"aws:region": "us-east-1"}, stack_outputs={ref: without_eks})
        return read

    def both(platform: pulumi.StackReference, read: dict[str, Any]) -> None:
        for field in ("buckets", "subnet_ids", "region", "eks"):
            name = backends.PlatformOutputs.output_name(field)
            read[field + "?"] = (platform_output(platform, field, required=False), platform.get_output(name))
            if field != "eks":
                read[field] = (platform_output(platform, field), platform.require_output(name))

    def facts(output: pulumi.Output) -> Any:
        async def get() -> Any:
            deps = sorted(r._name for r in await output.resources())
            return await output.future(), await output.is_known(), await output.is_secret(), deps

        return _sync_await(get())

    read = run(both)
    assert len(read) == 7
    for field, (ours, theirs) in read.items():
        assert facts(ours) == facts(theirs), field
    assert facts(read["buckets"][0])[0] == platform_outputs["buckets"] and facts(read["eks?"][0])[0] is None

    # `require_output` fails it with `l[1][l[0]]` on the outputs map (pulumi/stack_reference.py): a KeyError.
    with pytest.raises(KeyError, match="'eks'"):
        run(lambda platform, _: platform_output(platform, "eks"))
