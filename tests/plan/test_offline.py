"""The offline harness itself: what `trainstack plan` and every mock-engine test stand on."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from trainstack.plan.offline import run_offline


class _Remote(pulumi.ComponentResource):
    """A component implemented by a plugin (as pulumi-eks's are): registered with remote=True."""

    def __init__(self, name: str, role: aws.iam.Role):
        super().__init__("test:index:Remote", name, {"role": role, "roleArn": role.arn}, None, remote=True)


@pytest.mark.timeout(30)
def test_a_resource_passed_into_a_remote_component_does_not_hang_the_recording_monitor():
    def program():
        role = aws.iam.Role("node-role", assume_role_policy="{}")
        _Remote("remote", role)
        pulumi.export("roleArn", role.arn)

    run = run_offline(program, config={"aws:region": "us-east-1"})
    assert run.outputs["roleArn"].startswith("arn:aws:iam::")
    remote = run.one("test:index:Remote")
    assert remote.inputs["roleArn"] == run.outputs["roleArn"]  # its inputs are still recorded


def test_eks_and_kubernetes_mocks_answer_like_the_services():
    import pulumi_kubernetes as k8s

    def program():
        cluster = aws.eks.Cluster(
            "eks", role_arn="arn:aws:iam::123456789012:role/r", vpc_config={"subnet_ids": ["subnet-1", "subnet-2"]}
        )
        group = aws.eks.NodeGroup(
            "gpu",
            cluster_name=cluster.name,
            node_role_arn="arn:aws:iam::123456789012:role/n",
            subnet_ids=["subnet-1"],
            scaling_config={"min_size": 0, "max_size": 2, "desired_size": 0},
        )
        ns = k8s.core.v1.Namespace("ns")
        pulumi.export("endpoint", cluster.endpoint)
        pulumi.export("clusterSg", cluster.vpc_config.cluster_security_group_id)
        pulumi.export("asg", group.resources[0].autoscaling_groups[0].name)
        pulumi.export("groupArn", group.arn)
        pulumi.export("ns", ns.metadata.name)
        pulumi.export("uid", ns.metadata.uid)

    out = run_offline(program, config={"aws:region": "us-east-1"}).outputs
    assert out["endpoint"].startswith("https://") and out["clusterSg"].startswith("sg-")
    assert out["asg"].startswith("eks-gpu-")
    assert out["groupArn"].startswith("arn:aws:eks:us-east-1:123456789012:nodegroup/eks-")
    assert out["ns"].startswith("ns-") and len(out["uid"]) == 36


class _Group(pulumi.ComponentResource):
    """A component with a child, as trainstack's components are: registrations from two depths of user code."""

    def __init__(self, name: str):
        super().__init__("test:index:Group", name, None, None)
        aws.s3.Bucket(f"{name}-bucket", opts=pulumi.ResourceOptions(parent=self))


def test_the_fast_stack_trace_is_pulumis_own_on_real_registrations(monkeypatch):
    """`_fast_stack_trace` (installed by run_offline) against pulumi's `_get_stack_trace` itself, loaded afresh
    from the installed SDK's source (run_offline replaces the module's function for the process), both called at
    each registration of a program with custom resources, a component and its child."""
    import importlib.util

    from pulumi.runtime import resource as presource

    from trainstack.plan import offline

    spec = importlib.util.spec_from_file_location("pulumi.runtime.resource_original", presource.__file__)
    assert spec is not None and spec.loader is not None
    original = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(original)
    fast = offline._fast_stack_trace
    pairs = []

    def both():
        pairs.append((fast(), original._get_stack_trace()))
        return pairs[-1][0]

    monkeypatch.setattr(offline, "_fast_stack_trace", both)

    def program():
        aws.iam.Role("role", assume_role_policy="{}")
        _Group("group")

    run_offline(program, config={"aws:region": "us-east-1"})
    assert len(pairs) >= 3  # the role, the group and its bucket
    for mine, pulumis in pairs:
        assert mine == pulumis
    assert any(f.pc.uri.endswith("tests/plan/test_offline.py") for mine, _ in pairs for f in mine.frames)


def test_exports_resolve_as_output_from_input_resolves_them():
    """run_offline takes a known export that holds nothing to resolve as it is (no Output per leaf); every
    export, of every shape, resolves to what `Output.from_input(value).future()` gives."""
    from pulumi.runtime.sync_await import _sync_await

    from trainstack.plan.offline import _resolved

    compared: dict[str, tuple] = {}

    def program() -> None:
        role = aws.iam.Role("r", assume_role_policy="{}")
        unknown: pulumi.Output = pulumi.Output(set(), _done(None), _done(False))
        values = {
            "plain": {"a": [1, 2.5, None, True], "b": {"c": "d"}, "t": ("x", 1)},
            "output of a dict": pulumi.Output.from_input("arn").apply(lambda a: {"arn": a, "list": [a, 1]}),
            "dict holding outputs": {"arn": role.arn, "nested": [{"name": role.name}]},
            "output of a dict holding an output": role.arn.apply(lambda a: {"arn": a, "name": role.name}),
            "secret": pulumi.Output.secret({"k": "v"}),
            "unknown": unknown,
            "dict holding an unknown": {"u": unknown, "k": 1},
            "tuple": ("a", role.name),
        }
        for key, value in values.items():
            pulumi.export(key, value)
            compared[key] = (
                _sync_await(_resolved(value)),
                _sync_await(pulumi.Output.from_input(value).future(with_unknowns=False)),
            )

    run = run_offline(program, config={"aws:region": "us-east-1"})
    for key, (ours, pulumis) in compared.items():
        assert ours == pulumis and type(ours) is type(pulumis), key
    assert compared["dict holding outputs"][0] == {
        "arn": run.one("aws:iam/role:Role").state["arn"],
        "nested": [{"name": run.one("aws:iam/role:Role").state["name"]}],
    }
    assert compared["unknown"][0] is None and compared["tuple"][0][1] == run.one("aws:iam/role:Role").state["name"]
    assert run.outputs["plain"] == {"a": [1, 2.5, None, True], "b": {"c": "d"}, "t": ["x", 1]}


def _done(value):
    import asyncio

    future = asyncio.get_event_loop().create_future()
    future.set_result(value)
    return future
