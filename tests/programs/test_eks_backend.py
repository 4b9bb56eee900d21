"""The eks backend under the mock engine: what `pulumi up` would create for dev-eks and dev-eks-shared."""

from __future__ import annotations

import json

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator

from tests.helpers import cluster_config, policy_of, statements
from trainstack.model import eks_request as E
from trainstack.model.config import ClusterStack
from trainstack.model.scheduler_input import from_universal
from trainstack.plan.provider_schema import universal_target_problem


@pytest.fixture(scope="module")
def dedicated(example_plans):
    return example_plans["dev-eks"].run


@pytest.fixture(scope="module")
def shared(example_plans):
    return example_plans["dev-eks-shared"].run


def k8s_object(run, kind: str, name_contains: str = ""):
    return run.one(
        next(t for t in {r.type for r in run.resources} if t.startswith("kubernetes:") and t.endswith(f":{kind}")),
        name_contains,
    )


def test_built_from_aws_primitives_not_opaque_remote_components(dedicated):
    assert not [r.type for r in dedicated.resources if r.type.startswith("eks:")]
    assert all(r.custom or r.type.startswith(("trainstack:", "pulumi:")) for r in dedicated.resources)


def test_control_plane_uses_api_authentication_and_managed_addons(dedicated):
    cluster = dedicated.one("aws:eks/cluster:Cluster")
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    assert cluster.inputs["version"] == "1.35" and cluster.inputs["bootstrapSelfManagedAddons"] is False
    assert cluster.inputs["upgradePolicy"] == {"supportType": "STANDARD"}  # no silent $0.60/h extended support
    addons = {a.inputs["addonName"] for a in dedicated.of_type("aws:eks/addon:Addon")}
    assert addons == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"}
    system = dedicated.one("aws:eks/nodeGroup:NodeGroup", "system")
    assert system.inputs["scalingConfig"] == {"minSize": 1, "maxSize": 1, "desiredSize": 1}
    assert system.inputs["capacityType"] == "ON_DEMAND" and system.inputs["instanceTypes"] == ["t3.medium"]


def test_p3_node_group_sits_at_zero_with_taint_label_and_autoscaler_tags(dedicated):
    group = dedicated.one("aws:eks/nodeGroup:NodeGroup", "gpu-p3-2xlarge")
    assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA" and group.inputs["capacityType"] == "SPOT"
    assert group.inputs["instanceTypes"] == ["p3.2xlarge"]
    assert group.inputs["scalingConfig"] == {"minSize": 0, "maxSize": 2, "desiredSize": 0}
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in group.inputs["taints"]
    assert group.inputs["labels"][E.LABEL_FAMILY] == "p3"
    assert "scalingConfig.desiredSize" in group.ignore_changes
    # Created once the system nodes are up (their CNI, the node role's policies).
    assert dedicated.one("aws:eks/nodeGroup:NodeGroup", "system").urn in group.dependencies
    tags = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"] for t in dedicated.of_type("aws:autoscaling/tag:Tag")}
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "1"
    asg = group.state["resources"][0]["autoscalingGroups"][0]["name"]
    assert {t.inputs["autoscalingGroupName"] for t in dedicated.of_type("aws:autoscaling/tag:Tag")} == {asg}


def test_system_nodes_are_tagged_at_launch_and_use_imdsv2(dedicated):
    lt = dedicated.one("aws:ec2/launchTemplate:LaunchTemplate", "system")
    assert lt.inputs["metadataOptions"]["httpTokens"] == "required"
    assert {s["resourceType"] for s in lt.inputs["tagSpecifications"]} == {"instance", "volume", "network-interface"}
    assert "vpcSecurityGroupIds" not in lt.inputs  # EKS then attaches the cluster security group itself
    assert dedicated.one("aws:eks/nodeGroup:NodeGroup", "system").inputs["launchTemplate"]["id"] == lt.id


def test_gpu_launch_template_keeps_pods_off_the_node_role_and_tags_instances(dedicated):
    lt = dedicated.one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-")
    assert lt.inputs["metadataOptions"]["httpTokens"] == "required"
    assert lt.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    ebs = lt.inputs["blockDeviceMappings"][0]["ebs"]
    assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3"
    specs = {s["resourceType"]: s["tags"] for s in lt.inputs["tagSpecifications"]}
    assert set(specs) == {"instance", "volume", "network-interface"}
    cluster_sg = dedicated.one("aws:eks/cluster:Cluster").state["vpcConfig"]["clusterSecurityGroupId"]
    assert cluster_sg in lt.inputs["vpcSecurityGroupIds"]


def test_every_kubernetes_object_goes_through_the_clusters_provider(dedicated):
    provider = dedicated.one("pulumi:providers:kubernetes")
    objects = [r for r in dedicated.resources if r.type.startswith("kubernetes:")]
    assert len(objects) >= 10
    assert {r.provider.rsplit("::", 1)[0] for r in objects} == {provider.urn}  # provider reference: urn::id
    kubeconfig = provider.inputs["kubeconfig"]
    assert set(kubeconfig) == {"4dabf18193072939515e22adb298388d", "value"}  # Pulumi's secret signature
    assert json.loads(kubeconfig["value"])["users"][0]["user"]["exec"]["args"][:2] == ["eks", "get-token"]


def test_job_is_pinned_to_p3_with_gpu_limits_and_uses_the_pod_identity(dedicated):
    job = k8s_object(dedicated, "Job")
    spec = job.inputs["spec"]["template"]["spec"]
    assert spec["nodeSelector"][E.LABEL_FAMILY] == "p3"
    resources = spec["containers"][0]["resources"]
    assert resources["limits"] == {"nvidia.com/gpu": "1", "memory": resources["requests"]["memory"]}
    assert job.inputs["spec"]["completions"] == 2 and job.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"]
    # The example ships examples/cifar10 as its code: the container fetches it first.
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["TRAINSTACK_CODE_URI"] == dedicated.outputs["codeUri"]
    assert spec["containers"][0]["command"][:2] == ["python3", "-c"]
    association = dedicated.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "training")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        job.inputs["metadata"]["namespace"],
        spec["serviceAccountName"],
    )
    role = dedicated.one("aws:iam/role:Role", "training-role")
    assert association.inputs["roleArn"] == role.state["arn"]
    trust = statements(json.loads(role.inputs["assumeRolePolicy"]))[0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-namespace"] == "ts-dev-eks"
    # The Job waits for its identity, the GPU node groups and the device plugin.
    waits = set(job.dependencies)
    assert association.urn in waits
    assert k8s_object(dedicated, "DaemonSet").urn in waits
    assert dedicated.one("aws:eks/nodeGroup:NodeGroup", "gpu-p3-2xlarge").urn in waits


def test_autoscaler_runs_on_the_system_node_with_a_scoped_pod_identity(dedicated):
    deployment = k8s_object(dedicated, "Deployment")
    pod = deployment.inputs["spec"]["template"]["spec"]
    cluster = dedicated.one("aws:eks/cluster:Cluster").state["name"]
    assert pod["nodeSelector"] == {"trainstack.io/role": "system"}
    assert f"k8s.io/cluster-autoscaler/{cluster}" in " ".join(pod["containers"][0]["command"])
    association = dedicated.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "autoscaler")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "kube-system",
        pod["serviceAccountName"],
    )
    doc = policy_of(dedicated.one("aws:iam/rolePolicy:RolePolicy", "autoscaler"))
    resize = next(s for s in statements(doc) if "autoscaling:SetDesiredCapacity" in s["Action"])
    assert resize["Condition"]["StringEquals"] == {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}": "owned"}


def test_teardown_scales_every_group_to_zero_with_a_botocore_valid_request(dedicated):
    shape = get_session().get_service_model("eks").operation_model("UpdateNodegroupConfig").input_shape
    groups = {g.state["nodeGroupName"]: g for g in dedicated.of_type("aws:eks/nodeGroup:NodeGroup")}
    schedules = [
        s for s in dedicated.of_type("aws:scheduler/schedule:Schedule") if ":eks:" in s.inputs["target"]["arn"]
    ]
    called = {}
    for s in schedules:
        target = s.inputs["target"]
        assert target["arn"] == "arn:aws:scheduler:::aws-sdk:eks:updateNodegroupConfig"
        sent = json.loads(target["input"])
        # What Scheduler sends: PascalCase members (a universal target refuses `clusterName`) ...
        assert {"ClusterName", "NodegroupName", "ScalingConfig"} <= set(sent)
        assert universal_target_problem(target["arn"], target["input"]) == ""
        # ... and, in the API's own names, a request botocore accepts.
        request, wrong = from_universal("eks", "updateNodegroupConfig", sent)
        assert wrong == [] and ParamValidator().validate(request, shape).generate_report() == ""
        assert request["scalingConfig"]["minSize"] == request["scalingConfig"]["desiredSize"] == 0
        called.setdefault(request["nodegroupName"], []).append((s.inputs["scheduleExpression"], request))
    assert set(called) == set(groups)  # the GPU group and, in dedicated mode, the system group
    for name, calls in called.items():
        assert len({when for when, _ in calls}) == 2  # at expiry and a backstop later
        tainted = all(r.get("taints") for _, r in calls)
        assert tainted == ("system" not in name)
    doc = policy_of(dedicated.one("aws:iam/rolePolicy:RolePolicy", "teardown"))
    queues = {s.inputs["target"]["deadLetterConfig"]["arn"] for s in schedules}
    assert len(queues) == 1  # every schedule's failures go to the platform's one queue
    by_sid = {st["Sid"]: st for st in statements(doc)}
    assert by_sid["ScaleTheseNodeGroupsToZero"] == {
        "Sid": "ScaleTheseNodeGroupsToZero",
        "Effect": "Allow",
        "Action": "eks:UpdateNodegroupConfig",
        "Resource": sorted(g.state["arn"] for g in groups.values()),
    }
    assert by_sid["SendFailedCallsToDeadLetterQueue"] == {
        "Sid": "SendFailedCallsToDeadLetterQueue",
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": queues.pop(),
    }


def gpu_asg(run) -> str:
    group = run.one("aws:eks/nodeGroup:NodeGroup", "gpu-")
    return group.state["resources"][0]["autoscalingGroups"][0]["name"]


def test_at_expiry_the_gpu_groups_are_taken_from_cluster_autoscaler_until_the_next_up(dedicated):
    """Cluster Autoscaler keeps templates of a group from its last running node (node-info cache, 10 years by
    default) or DescribeNodegroup (6 min cache), so the expiry taint alone may not stop it re-growing a group
    for the Job's re-created pods. The teardown deletes the group's `k8s.io/cluster-autoscaler/<cluster>` tag:
    the autoscaler's role may then no longer resize it (decided by the IAM engine, tests/iam) and it drops the
    group at its next refresh. The tag is a Pulumi resource, so the next `up` restores it."""
    from tests.iam.engine import ALLOWED, IMPLICIT_DENY, Request, evaluate

    cluster = dedicated.one("aws:eks/cluster:Cluster").state["name"]
    key, asg = f"k8s.io/cluster-autoscaler/{cluster}", gpu_asg(dedicated)
    owner = [t for t in dedicated.of_type("aws:autoscaling/tag:Tag") if t.inputs["tag"]["key"] == key]
    assert [(t.inputs["autoscalingGroupName"], t.inputs["tag"]["value"]) for t in owner] == [(asg, "owned")]

    releases = [
        s for s in dedicated.of_type("aws:scheduler/schedule:Schedule") if ":autoscaling:" in s.inputs["target"]["arn"]
    ]
    assert len({s.inputs["scheduleExpression"] for s in releases}) == 2  # at expiry, and with the backstop
    shape = get_session().get_service_model("autoscaling").operation_model("DeleteTags").input_shape
    for s in releases:
        target = s.inputs["target"]
        assert target["arn"] == "arn:aws:scheduler:::aws-sdk:autoscaling:deleteTags"
        assert universal_target_problem(target["arn"], target["input"]) == ""
        request = json.loads(target["input"])
        assert ParamValidator().validate(request, shape).generate_report() == ""
        assert request == {"Tags": [{"ResourceId": asg, "ResourceType": "auto-scaling-group", "Key": key}]}

    arn = f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:0f1e2d3c-aaaa-bbbb-cccc-000000000001:autoScalingGroupName/{asg}"
    other = arn.replace(asg, "someone-elses-group")
    role = "arn:aws:iam::123456789012:role/teardown"
    teardown = policy_of(dedicated.one("aws:iam/rolePolicy:RolePolicy", "teardown"))
    autoscaler = policy_of(dedicated.one("aws:iam/rolePolicy:RolePolicy", "autoscaler"))
    ca = "arn:aws:iam::123456789012:role/autoscaler"
    decided = evaluate(
        [
            Request(
                "teardown deletes the owner tag",
                role,
                "autoscaling:DeleteTags",
                arn,
                {"aws:TagKeys": [key]},
                (teardown,),
            ),
            Request(
                "nor any other tag", role, "autoscaling:DeleteTags", arn, {"aws:TagKeys": [key, "Name"]}, (teardown,)
            ),
            Request("nor another group's", role, "autoscaling:DeleteTags", other, {"aws:TagKeys": [key]}, (teardown,)),
            Request(
                "the autoscaler resizes an owned group",
                ca,
                "autoscaling:SetDesiredCapacity",
                arn,
                {f"aws:ResourceTag/{key}": "owned"},
                (autoscaler,),
            ),
            Request("but not once the tag is gone", ca, "autoscaling:SetDesiredCapacity", arn, {}, (autoscaler,)),
        ]
    )
    assert decided == {
        "teardown deletes the owner tag": ALLOWED,
        "nor any other tag": IMPLICIT_DENY,
        "nor another group's": IMPLICIT_DENY,
        "the autoscaler resizes an owned group": ALLOWED,
        "but not once the tag is gone": IMPLICIT_DENY,
    }


def test_outputs_name_the_cluster_job_and_how_to_follow_it(dedicated):
    out = dedicated.outputs
    assert out["namespace"] == "ts-dev-eks" and out["jobName"] == "train" and out["eksMode"] == "dedicated"
    assert out["clusterName"] == dedicated.one("aws:eks/cluster:Cluster").state["name"]
    assert len(out["nodeGroupNames"]) == 1 and "kubectl logs -n ts-dev-eks" in out["logsCommand"]
    assert json.loads(out["kubeconfig"])["clusters"][0]["cluster"]["server"].startswith("https://")


def test_idle_cost_is_the_control_plane_and_system_node_in_dedicated_mode_only(example_plans):
    dedicated, shared, platform = (example_plans[s].cost for s in ("dev-eks", "dev-eks-shared", "platform-eks"))
    assert dedicated.idle_usd_per_hour == pytest.approx(0.10 + 0.0416)
    assert dedicated.busy_usd_per_hour == pytest.approx(0.10 + 0.0416 + 2 * 3.06)
    assert shared.idle_usd_per_hour == 0 and shared.busy_usd_per_hour > 3
    assert platform.idle_usd_per_hour == pytest.approx(0.10 + 0.0416)


def test_shared_mode_adds_only_node_groups_and_the_job_to_the_platforms_cluster(shared, example_plans):
    assert not shared.of_type("aws:eks/cluster:Cluster") and not shared.of_type("aws:eks/addon:Addon")
    platform = example_plans["platform-eks"].run
    cluster_name = platform.outputs["eks"]["clusterName"]
    groups = shared.of_type("aws:eks/nodeGroup:NodeGroup")
    assert len(groups) == 2 and {g.inputs["clusterName"] for g in groups} == {cluster_name}
    assert shared.one("aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs["clusterName"] == cluster_name
    # The platform's Cluster Autoscaler and device plugin serve every shared cluster stack.
    assert platform.one("aws:eks/cluster:Cluster") and [r for r in platform.resources if r.type.endswith(":DaemonSet")]
    # Teardown never touches the shared system group.
    names = {
        json.loads(s.inputs["target"]["input"]).get("NodegroupName")
        for s in shared.of_type("aws:scheduler/schedule:Schedule")
        if ":eks:" in s.inputs["target"]["arn"]
    }
    assert names == {g.state["nodeGroupName"] for g in groups}


def test_shared_mode_on_a_platform_without_a_shared_cluster_fails_at_plan_time(run_stack):
    with pytest.raises(Exception, match="exports no shared EKS cluster.*sharedCluster: true"):
        run_stack(cluster_config("eks", gpu={"instanceTypes": ["p3.2xlarge"]}, eks={"mode": "shared"}))


def test_plan_shows_the_eks_cluster_end_to_end(example_plans):
    import io

    from rich.console import Console

    from trainstack.plan.render import render

    console = Console(width=200, file=io.StringIO(), record=True)
    render(example_plans["dev-eks"], console)
    output = console.export_text()
    for fragment in (
        "eks-control-plane-cluster  aws:eks:Cluster",
        "gpu-p3-2xlarge  aws:eks:NodeGroup  ignores scalingConfig.desiredSize",
        "nvidia-device-plugin  kubernetes:apps:DaemonSet",
        "eks-addons-autoscaler  kubernetes:apps:Deployment",
        "training-identity  aws:eks:PodIdentityAssociation",
        "training-job  kubernetes:batch:Job",
        "teardown-scale-to-zero-p3-2xlarge  aws:scheduler:Schedule",
        "idle $0.14/h",
        "plan ok",
    ):
        assert fragment in output, fragment


def test_bottlerocket_on_demand_groups_keep_their_own_plugin_and_data_volume(run_stack):
    run = run_stack(
        cluster_config(
            "eks",
            gpu={"instanceTypes": ["g5.xlarge"], "family": "g5", "spotPercent": 0},
            eks={"amiType": "BOTTLEROCKET_x86_64_NVIDIA"},
        ),
        stack="dev-br",
    )
    group = run.one("aws:eks/nodeGroup:NodeGroup", "gpu-g5-xlarge")
    assert group.inputs["amiType"] == "BOTTLEROCKET_x86_64_NVIDIA" and group.inputs["capacityType"] == "ON_DEMAND"
    plugin = k8s_object(run, "DaemonSet").inputs["spec"]["template"]["spec"]["nodeSelector"]
    assert not plugin.items() <= group.inputs["labels"].items()  # Bottlerocket ships the plugin
    lt = run.one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-")
    assert lt.inputs["blockDeviceMappings"][0]["deviceName"] == "/dev/xvdb"  # Bottlerocket's data volume
    assert "placement" not in lt.inputs and not run.of_type("aws:ec2/placementGroup:PlacementGroup")


def test_plan_names_the_eks_ami_type_and_the_volta_driver(example_plans):
    from trainstack.plan.planner import ami_plan

    ami = ami_plan(example_plans["dev-eks"].config)
    assert ami["source"].startswith("EKS node group AMI type AL2023_x86_64_NVIDIA")
    assert ami["driverBranch"] == 580 and "proprietary" in ami["driverModule"]


@pytest.mark.parametrize("stack", ["dev-eks", "dev-eks-shared", "platform-eks"])
def test_every_kubernetes_object_pulumi_receives_is_schema_valid(example_plans, stack):
    from tests.helpers import kubernetes_validate

    result = example_plans[stack]
    cfg = result.config
    version = cfg.cluster.eks.version if isinstance(cfg, ClusterStack) else cfg.platform.eks.version
    objects = [r for r in result.run.resources if r.type.startswith("kubernetes:")]
    assert objects
    for r in objects:
        assert r.inputs["apiVersion"] and r.inputs["kind"]
        kubernetes_validate().validate(r.inputs, version, strict=True)


def test_eks_training_cluster_is_usable_on_its_own_from_any_program(run_program):
    """Flat args, no trainstack config or stack file: what a user's own Pulumi program writes."""
    import pulumi

    from trainstack.components.eks_training_cluster import EksTrainingCluster, EksTrainingClusterArgs
    from trainstack.model.run_locations import RunLocations

    locations = RunLocations(
        "raw", "arn:aws:s3:::raw", "d/", "art", "arn:aws:s3:::art", "artifacts/a/solo/", "checkpoints/a/solo/"
    )

    def program():
        cluster = EksTrainingCluster(
            "solo",
            EksTrainingClusterArgs(
                stack="solo",
                region="us-east-1",
                account_id="123456789012",
                subnet_ids=["subnet-1", "subnet-2"],
                security_group_id="sg-1",
                locations=locations,
                kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
                instance_types=("g5.xlarge",),
                image="763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311",
                command=("python", "train.py"),
            ),
        )
        pulumi.export("groups", [g.node_group_name for g in cluster.gpu.groups.values()])
        pulumi.export("targets", len(cluster.teardown_targets()))

    run = run_program(program)
    assert len(run.outputs["groups"]) == 1 and run.outputs["targets"] == 2  # the GPU group and the system group
    group = run.one("aws:eks/nodeGroup:NodeGroup", "solo-gpu-g5")
    assert group.inputs["capacityType"] == "SPOT" and group.inputs["scalingConfig"]["minSize"] == 0
    job = run.one("kubernetes:batch/v1:Job")
    assert job.inputs["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "train.py"]
    assert all(r.parent for r in run.resources if r.type != "trainstack:eks:EksTrainingCluster")


def test_eks_component_args_are_checked_before_any_resource():
    from trainstack.components.eks_training_cluster import EksTrainingClusterArgs

    base = dict(
        stack="solo",
        region="us-east-1",
        account_id="123456789012",
        subnet_ids=["subnet-1"],
        security_group_id="sg-1",
        locations=None,
        kms_key_arn="k",
        instance_types=("g5.xlarge",),
        image="img",
    )
    with pytest.raises(ValueError, match="capacity_type = 'spot': use SPOT or ON_DEMAND"):
        EksTrainingClusterArgs(**base, capacity_type="spot")
    with pytest.raises(ValueError, match=r"nodes = 3: more than max_instances \(2\)"):
        EksTrainingClusterArgs(**base, nodes=3, max_instances=2)
    with pytest.raises(ValueError, match="command = \\['python'\\]: use `python script.py"):
        EksTrainingClusterArgs(**base, nodes=2, command=("python",))
    with pytest.raises(ValueError, match="instance_types m5.large: not in trainstack's GPU instance catalog"):
        EksTrainingClusterArgs(**{**base, "instance_types": ("m5.large",)})


@pytest.mark.parametrize("stack", ["dev-eks", "platform-eks"])
def test_control_plane_encrypts_secrets_with_the_platform_key_and_logs_audit_to_its_own_group(example_plans, stack):
    """Secrets envelope-encrypted with the platform's (protected, rotating) key, not a key per run that would
    sit in pending deletion after each destroy; audit and authenticator logs into a log group the stack
    creates first under EKS's own name for it, with the stack's retention and key."""
    run = example_plans[stack].run
    cfg = example_plans[stack].config
    cluster = run.one("aws:eks/cluster:Cluster")
    name = cluster.inputs["name"]
    assert name == E.cluster_name(cfg.stack, cfg.owner) and name.startswith("trainstack-")
    platform = run if stack == "platform-eks" else example_plans["platform"].run
    key = platform.one("aws:kms/key:Key").state["arn"]
    assert cluster.inputs["encryptionConfig"] == {"provider": {"keyArn": key}, "resources": ["secrets"]}
    assert cluster.inputs["enabledClusterLogTypes"] == ["audit", "authenticator"]
    assert cluster.inputs["vpcConfig"]["endpointPrivateAccess"] is True  # nodes reach the API inside the VPC
    logs = run.one("aws:cloudwatch/logGroup:LogGroup", "control-plane" if stack == "dev-eks" else "eks-logs")
    assert logs.inputs["name"] == f"/aws/eks/{name}/cluster" and logs.inputs["kmsKeyId"] == key
    assert logs.inputs["retentionInDays"] == (14 if stack == "dev-eks" else 30)
    assert logs.urn in cluster.dependencies  # before the cluster, or EKS creates it (no retention, no key)
    role = policy_of(run.one("aws:iam/rolePolicy:RolePolicy", "cluster-key-policy"))
    use, deny = statements(role)
    assert use["Resource"] == key and "kms:Decrypt" in use["Action"]
    assert deny == {"Sid": "NeverCreateTheLogGroup", "Effect": "Deny", "Action": "logs:CreateLogGroup", "Resource": "*"}


@pytest.mark.parametrize("stack", ["dev-eks", "platform-eks"])
def test_the_vpc_cni_enforces_network_policies(example_plans, stack):
    cni = next(a for a in example_plans[stack].run.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni")
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


@pytest.mark.parametrize("stack", ["dev-eks", "dev-eks-shared"])
def test_each_run_namespace_is_isolated_before_its_job_starts(example_plans, stack):
    run = example_plans[stack].run
    job = k8s_object(run, "Job")
    ns = job.inputs["metadata"]["namespace"]
    policies = [r for r in run.resources if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy"]
    assert {p.inputs["metadata"]["namespace"] for p in policies} == {ns}
    assert any(p.inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]} for p in policies)
    assert {p.urn for p in policies} <= set(job.dependencies)
    namespace = k8s_object(run, "Namespace")
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_ci_roles_administer_the_cluster_and_lose_access_only_after_its_objects_are_gone(dedicated):
    """Without access entries only the cluster's creator could refresh or destroy it (the reaper would get 401).
    The Kubernetes provider waits for the policy associations, so a destroy removes them last."""
    entries = {e.inputs["principalArn"]: e for e in dedicated.of_type("aws:eks/accessEntry:AccessEntry")}
    assert set(entries) == {
        f"arn:aws:iam::123456789012:role/{r}"
        for r in ("trainstack-ci-train", "trainstack-ci-reaper", "trainstack-ci-pr-cleanup", "trainstack-ci-preview")
    }
    assert {e.inputs["type"] for e in entries.values()} == {"STANDARD"}
    policies = {
        a.inputs["principalArn"]: a
        for a in dedicated.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    assert set(policies) == set(entries)
    prefix = "arn:aws:eks::aws:cluster-access-policy/"
    for arn, a in policies.items():
        expected = "AmazonEKSAdminViewPolicy" if arn.endswith("preview") else "AmazonEKSClusterAdminPolicy"
        assert a.inputs["policyArn"] == prefix + expected and a.inputs["accessScope"] == {"type": "cluster"}
    provider = dedicated.one("pulumi:providers:kubernetes")
    assert {a.urn for a in policies.values()} <= set(provider.dependencies)


def test_shared_cluster_grants_its_developers_and_refuses_an_unknown_role(run_stack, monkeypatch):
    from tests.helpers import PLATFORM_CONFIG
    from trainstack.plan import offline
    from trainstack.plan.offline import run_offline
    from trainstack.programs.program import main

    monkeypatch.setitem(offline.ROLES, "ml-developers", "/teams/")
    config = {**PLATFORM_CONFIG, "trainstack:eks": {"sharedCluster": True, "developerRoles": ["ml-developers"]}}
    run = run_offline(main, config=config, stack="platform-x")
    grants = {
        a.inputs["principalArn"]: a.inputs["policyArn"].rsplit("/", 1)[1]
        for a in run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    assert grants["arn:aws:iam::123456789012:role/teams/ml-developers"] == "AmazonEKSClusterAdminPolicy"  # its path
    bad = {**config, "trainstack:eks": {"sharedCluster": True, "developerRoles": ["no-such-team"]}}
    with pytest.raises(Exception, match=r"trainstack:eks.developerRoles = \['no-such-team'\]: role `no-such-team`"):
        run_offline(main, config=bad, stack="platform-y")
