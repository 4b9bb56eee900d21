"""Scheduler universal targets take PascalCase member names; map keys (data) keep their case."""

from __future__ import annotations

from botocore.session import get_session
from botocore.validate import ParamValidator

from trainstack.components.auto_teardown import scale_group_to_zero_request, shut_down_instances_request
from trainstack.model.eks_request import scale_node_group_to_zero_request
from trainstack.model.scheduler_input import from_universal, to_universal


def test_an_eks_request_gets_pascal_case_members_and_keeps_enum_values():
    sent = to_universal("eks", "updateNodegroupConfig", scale_node_group_to_zero_request("c", "g", 4))
    assert sent == {
        "ClusterName": "c",
        "NodegroupName": "g",
        "ScalingConfig": {"MinSize": 0, "MaxSize": 4, "DesiredSize": 0},
        "Taints": {"AddOrUpdateTaints": [{"Key": "trainstack.io/expired", "Value": "true", "Effect": "NO_SCHEDULE"}]},
    }


def test_the_pascal_case_apis_are_unchanged_and_map_keys_keep_their_case():
    ssm = shut_down_instances_request("grp")
    assert to_universal("ssm", "sendCommand", ssm) == ssm  # Parameters.commands is a map key
    asg = scale_group_to_zero_request("grp")
    assert to_universal("autoscaling", "updateAutoScalingGroup", asg) == asg
    labels = {"clusterName": "c", "nodegroupName": "g", "labels": {"addOrUpdateLabels": {"team.io/gpu": "v100"}}}
    assert to_universal("eks", "updateNodegroupConfig", labels)["Labels"] == {
        "AddOrUpdateLabels": {"team.io/gpu": "v100"}
    }


def test_from_universal_gives_back_a_botocore_valid_request():
    request = scale_node_group_to_zero_request("c", "g", 4)
    back, wrong = from_universal("eks", "updateNodegroupConfig", to_universal("eks", "updateNodegroupConfig", request))
    assert back == request and wrong == []
    shape = get_session().get_service_model("eks").operation_model("UpdateNodegroupConfig").input_shape
    assert ParamValidator().validate(back, shape).generate_report() == ""
