"""Time to first GPU: critical-path arithmetic on synthetic graphs, and the estimate of every example."""

from __future__ import annotations

import pytest

from tests.helpers import STACKS
from trainstack import backends
from trainstack.model import timing as T
from trainstack.plan.render import timing_line


def node(urn, type_="t:a", parent="", deps=(), custom=True):
    return T.Node(urn, type_, urn, parent, tuple(deps), custom)


D = {"t:a": (10, "a"), "t:b": (100, "b"), "t:c": (1, "c")}


def test_a_chain_adds_up():
    total, path = T.critical_path([node("x"), node("y", deps=["x"]), node("z", "t:b", deps=["y"])], D)
    assert total == 120 and [s.name for s in path] == ["x", "y", "z"]
    assert [s.finish for s in path] == [10, 20, 120]


def test_parallel_branches_take_the_longest():
    nodes = [
        node("root"),
        node("slow", "t:b", deps=["root"]),
        node("fast", "t:c", deps=["root"]),
        node("join", "t:c", deps=["slow", "fast"]),
    ]
    total, path = T.critical_path(nodes, D)
    assert total == 111 and [s.name for s in path] == ["root", "slow", "join"]


def test_ties_are_decided_the_same_whatever_order_resources_and_dependencies_come_in():
    """The engine's registration order and dependency lists vary between runs: two plans of one stack printed
    different critical paths when two chains took equally long."""
    import itertools

    a, b = node("a"), node("b")
    nodes = [a, b, node("after-a", deps=["a"]), node("after-b", deps=["b"]), node("join", deps=["after-a", "after-b"])]
    seen = set()
    for order in itertools.permutations(nodes):
        for deps in (("after-a", "after-b"), ("after-b", "after-a")):
            shuffled = [n if n.urn != "join" else node("join", deps=deps) for n in order]
            total, path = T.critical_path(shuffled, D)
            seen.add((total, tuple(s.name for s in path)))
    assert seen == {(30, ("b", "after-b", "join"))}  # the greater URN among equal finishes


def test_a_custom_parent_must_exist_before_its_child():
    total, path = T.critical_path([node("p", "t:b"), node("child", parent="p")], D)
    assert total == 110 and [s.name for s in path] == ["p", "child"]


def test_a_component_costs_nothing_and_ends_with_its_last_child():
    nodes = [
        node("comp", "trainstack:x:C", custom=False),
        node("in1", "t:b", parent="comp"),
        node("in2", "t:c", parent="comp"),
        node("user", deps=["comp"]),
    ]
    total, path = T.critical_path(nodes, D)
    assert total == 110 and [s.name for s in path] == ["in1", "user"]
    assert T.finish_times(nodes, D)["comp"] == 100


def test_a_component_waits_for_its_own_dependencies():
    nodes = [
        node("first", "t:b"),
        node("comp", "trainstack:x:C", deps=["first"], custom=False),
        node("inner", parent="comp"),
    ]
    total, path = T.critical_path(nodes, D)
    assert total == 110 and [s.name for s in path] == ["first", "inner"]


def test_dependencies_outside_the_graph_are_ignored_and_unknown_types_get_the_default():
    total, _ = T.critical_path([node("x", "t:unknown", deps=["urn:elsewhere"])], D)
    assert total == T.DEFAULT_CREATE[0]


def test_a_cycle_is_an_error():
    with pytest.raises(ValueError, match="cycle"):
        T.critical_path([node("x", deps=["y"]), node("y", deps=["x"])], D)


def test_the_empty_graph_takes_no_time():
    assert T.critical_path([]) == (0.0, ())


def test_ec2_training_starts_from_the_group_not_from_the_end_of_up():
    nodes = [node("asg", "aws:autoscaling/group:Group"), node("late", "aws:eks/cluster:Cluster")]
    est = T.estimate(nodes, "ec2", image="docker.io/me/train:1")
    asg = T.CREATE_SECONDS["aws:autoscaling/group:Group"][0]
    after = sum(p.seconds for p in backends.get("ec2").after_up) + T.DEFAULT_IMAGE_GIB[0] * T.PULL_SECONDS_PER_GIB
    assert est.up_seconds == T.CREATE_SECONDS["aws:eks/cluster:Cluster"][0]
    assert est.training_seconds == max(asg + after, est.up_seconds)
    assert est.after_up[-1].name == "image pull" and "unknown" in est.after_up[-1].source


def test_ecs_training_starts_after_up_and_a_known_image_is_sized():
    dlc = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-ec2"
    est = T.estimate([node("asg", "aws:autoscaling/group:Group")], "ecs", image=dlc)
    pull = est.after_up[-1]
    assert pull.seconds == 10.0 * T.PULL_SECONDS_PER_GIB and "DLC" in pull.source
    assert est.training_seconds == est.up_seconds + sum(s.seconds for s in est.after_up)


def test_a_platform_has_no_gpu_phases():
    est = T.estimate([node("vpc", "aws:ec2/vpc:Vpc")], "none")
    assert est.after_up == () and est.training_seconds == est.up_seconds == 5


@pytest.mark.parametrize("stack", STACKS)
def test_every_example_prints_up_time_and_critical_path(example_plans, stack):
    result = example_plans[stack]
    t = result.timing
    assert t.critical_path and t.up_seconds == t.critical_path[-1].finish
    line = timing_line(t)
    assert "`pulumi up` ~" in line and "critical path:" in line
    if result.config.kind == "cluster":
        assert "training starts ~" in line and t.training_seconds > t.up_seconds
