"""The eks backend's requests and manifests (pure): what EKS, Kubernetes and the scheduler get."""

from __future__ import annotations

import copy

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import NOW, cluster_config, kubernetes_validate
from trainstack.model import catalog
from trainstack.model import config as C
from trainstack.model import eks_request as E
from trainstack.model.run_locations import RunLocations

LOCATIONS = RunLocations(
    "raw-bucket",
    "arn:aws:s3:::raw-bucket",
    "cifar10/v1/",
    "artifacts-bucket",
    "arn:aws:s3:::artifacts-bucket",
    "artifacts/alice/dev-eks/",
    "checkpoints/alice/dev-eks/",
)


def eks_cluster(nodes=2, gpus=1, types=("p3.2xlarge", "p3.8xlarge"), spot=100, **job):
    raw = cluster_config(
        "eks",
        gpu={"instanceTypes": list(types), "spotPercent": spot, "maxInstances": max(4, nodes)},
        job={"nodes": nodes, "gpusPerNode": gpus, **job},
    )
    return C.parse_config(raw, stack="dev-eks", now=NOW).cluster


def job_manifest(cluster, stack="dev-eks"):
    return E.training_job(
        E.job_spec(cluster), stack=stack, namespace=E.namespace_name(stack), locations=LOCATIONS, region="us-east-1"
    )


def pod_spec(job):
    return job["spec"]["template"]["spec"]


def tolerated(taint: dict, tolerations: list[dict]) -> bool:
    """Kubernetes' toleration matching (key, operator Exists/Equal, effect)."""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t["key"] == taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("operator", "Equal") == "Equal" and t.get("value") == taint["value"]:
            return True
    return False


# ------------------------------------------------------------------------------ node groups


def test_one_node_group_per_type_at_zero_with_gpu_taint_and_family_label():
    specs = E.node_group_specs(eks_cluster(), "dev-eks")
    assert [s.instance_type for s in specs] == ["p3.2xlarge", "p3.8xlarge"]
    for s in specs:
        assert (s.min_size, s.desired_size, s.max_size) == (0, 0, 4)
        assert s.capacity_type == "SPOT"
        assert s.labels[E.LABEL_FAMILY] == "p3" and s.labels[E.LABEL_STACK] == "dev-eks"
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in s.taints
    assert [s.gpus for s in specs] == [1, 4]
    assert {s.capacity_type for s in E.node_group_specs(eks_cluster(spot=0), "x")} == {"ON_DEMAND"}


def test_autoscaler_node_template_tags_describe_the_group_at_zero():
    spec = E.node_group_specs(eks_cluster(), "dev-eks")[1]
    tags = spec.autoscaler_tags()
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "4"
    assert tags["k8s.io/cluster-autoscaler/node-template/label/trainstack.io/gpu-family"] == "p3"
    assert tags["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "true:NoSchedule"


# ------------------------------------------------------------------------------ the Job


def test_job_pods_select_the_group_labels_and_tolerate_exactly_its_taints():
    cluster = eks_cluster()
    job = job_manifest(cluster)
    spec = pod_spec(job)
    for group in E.node_group_specs(cluster, "dev-eks"):
        assert all(group.labels.get(k) == v for k, v in spec["nodeSelector"].items())
        assert all(tolerated(t, spec["tolerations"]) for t in group.k8s_taints)
    # ...and nothing else: a node of another stack (other taint value) stays out of reach.
    other = E.node_group_specs(cluster, "dev-other")[0]
    assert not all(tolerated(t, spec["tolerations"]) for t in other.k8s_taints)
    assert not tolerated({"key": E.EXPIRED_TAINT_KEY, "value": "true", "effect": "NoSchedule"}, spec["tolerations"])


@pytest.mark.parametrize("gpus", [1, 4])
def test_gpu_limit_equals_gpus_per_node(gpus):
    cluster = eks_cluster(nodes=2, gpus=gpus, types=("p3.8xlarge",))
    container = pod_spec(job_manifest(cluster))["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == str(gpus)
    assert "--nproc_per_node" in container["command"]
    assert container["command"][container["command"].index("--nproc_per_node") + 1] == str(gpus)


def torchrun_of(argv: list[str]) -> list[str]:
    """The torchrun argv inside a multi-node container command (after `python3 -c <launcher> host port`)."""
    return argv[argv.index("torchrun") :]


def test_indexed_job_with_headless_service_and_elastic_rendezvous_on_rank_zero():
    cluster = eks_cluster(nodes=3)
    job = job_manifest(cluster)
    spec, ns = pod_spec(job), E.namespace_name("dev-eks")
    service = E.headless_service(E.job_spec(cluster), ns)
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
    assert spec["subdomain"] == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"  # its pods come later
    command = spec["containers"][0]["command"]
    host = f"train-0.train.{ns}.svc"  # rank 0's pod: hostname train-0 in the Service's subdomain
    # The launcher (trainstack/model/eks_launcher.py) first: it knows the endpoint to probe ...
    assert command[:2] == ["python3", "-c"] and command[2] == E.launcher_source()
    assert command[3:5] == [host, "29500"]
    argv = torchrun_of(command)
    # ... then elastic torchrun, as on ec2: a fixed size, a c10d store on rank 0's pod, restarts.
    assert argv[argv.index("--nnodes") + 1] == "3:3"
    assert argv[argv.index("--rdzv_backend") + 1] == "c10d"
    assert argv[argv.index("--rdzv_endpoint") + 1] == f"{host}:29500"
    assert str(service["spec"]["ports"][0]["port"]) == "29500"
    assert argv[argv.index("--rdzv_id") + 1] == f"{ns}-train"  # the same in every pod
    # job.peerTimeoutMinutes: a pod's agent waits that long for the store of a pod that may start later.
    assert argv[argv.index("--rdzv_conf") + 1] == "join_timeout=1800,read_timeout=900,is_host=@IS_HOST@"
    assert argv[argv.index("--max_restarts") + 1] == "3"
    assert "--node_rank" not in argv and "--master_addr" not in argv  # ranks come from the rendezvous
    assert argv[-1] == "train.py"
    affinity = spec["affinity"]
    assert (
        affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"]
        == "kubernetes.io/hostname"
    )
    zone = affinity["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert zone["topologyKey"] == "topology.kubernetes.io/zone"


def test_one_pod_with_several_gpus_runs_a_single_node_torchrun_without_the_launcher():
    spec = pod_spec(job_manifest(eks_cluster(nodes=1, gpus=4, types=("p3.8xlarge",))))
    argv = spec["containers"][0]["command"]
    assert argv[:3] == ["torchrun", "--nnodes", "1"] and argv[argv.index("--master_addr") + 1] == "127.0.0.1"


def test_single_gpu_job_runs_the_command_as_is_without_a_service():
    cluster = eks_cluster(nodes=1, gpus=1)
    spec = pod_spec(job_manifest(cluster))
    assert spec["containers"][0]["command"] == ["python", "train.py"]
    assert "subdomain" not in spec and "affinity" not in spec


def test_job_survives_spot_interruptions_stops_at_the_deadline_and_does_not_block_up():
    """Kubernetes "Pod failure policy": the first matching rule decides; Ignore does not count against
    backoffLimit and re-creates the pod in its index, Count does, FailJob ends the Job."""
    from trainstack.model.eks_launcher import LOST_HOST_EXIT

    job = job_manifest(eks_cluster(nodes=3))
    evicted, lost_host, failed = job["spec"]["podFailurePolicy"]["rules"]
    assert evicted == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    # A pod whose rendezvous host was evicted is re-created to rejoin the new host, HOST_LOSSES times.
    assert lost_host["action"] == "Count" and lost_host["onExitCodes"]["values"] == [LOST_HOST_EXIT]
    assert lost_host["onExitCodes"]["operator"] == "In" and lost_host["onExitCodes"]["containerName"] == "training"
    assert job["spec"]["backoffLimit"] == 2 * E.HOST_LOSSES  # each host loss costs the 2 other pods one failure
    # Anything else (a bug, OOMKilled, the max runtime) fails the run at once.
    assert failed == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "training", "operator": "NotIn", "values": [0]},
    }
    single = job_manifest(eks_cluster(nodes=1))
    assert single["spec"]["backoffLimit"] == 0 and len(single["spec"]["podFailurePolicy"]["rules"]) == 2
    assert job["spec"]["activeDeadlineSeconds"] == 6 * 3600
    assert job["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    assert "ttlSecondsAfterFinished" not in job["spec"]  # a deleted Job would be re-created by `up`


def test_job_gets_shared_memory_the_run_locations_and_its_node_rank():
    spec = pod_spec(job_manifest(eks_cluster()))
    container = spec["containers"][0]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    dshm = next(v for v in spec["volumes"] if v["name"] == "dshm")
    assert dshm["emptyDir"]["medium"] == "Memory"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["TRAINSTACK_MODEL_URI"] == "s3://artifacts-bucket/artifacts/alice/dev-eks/model/"
    assert env["AWS_REGION"] == "us-east-1" and env["TRAINSTACK_NNODES"] == "2"
    assert "job-completion-index" in env["TRAINSTACK_NODE_RANK"]["fieldRef"]["fieldPath"]
    assert spec["serviceAccountName"] == E.SERVICE_ACCOUNT


def test_requests_fit_the_smallest_listed_type():
    res = E.pod_resources(E.job_spec(eks_cluster(types=("p3.2xlarge", "p3.8xlarge"))))
    assert int(res.cpu) < 8 and int(res.memory.rstrip("Gi")) < 61  # p3.2xlarge: 8 vCPU, 61 GiB


# ------------------------------------------------------------------------------ schemas


@pytest.mark.parametrize("nodes", [1, 2])
@pytest.mark.parametrize("version", sorted(catalog.EKS_VERSIONS))
def test_every_manifest_is_valid_for_the_cluster_version(nodes, version):
    cluster = eks_cluster(nodes=nodes)
    manifests = E.manifests_for_validation(cluster, stack="dev-eks", locations=LOCATIONS, region="us-east-1")
    assert {m["kind"] for m in manifests} >= {
        "Namespace",
        "ServiceAccount",
        "Job",
        "DaemonSet",
        "Deployment",
        "ClusterRole",
    }
    for m in manifests:
        kubernetes_validate().validate(m, version, strict=True)


def test_the_schema_check_would_catch_a_misspelt_field():
    job = copy.deepcopy(job_manifest(eks_cluster()))
    pod_spec(job)["nodeSelectr"] = {"x": "y"}
    with pytest.raises(kubernetes_validate().ValidationError):
        kubernetes_validate().validate(job, "1.35", strict=True)


def test_cluster_autoscaler_matches_the_cluster_version_and_discovers_its_groups():
    manifests = E.cluster_autoscaler_manifests("ts-cluster", "1.34", "us-east-1")
    deploy = next(m for m in manifests if m["kind"] == "Deployment")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.k8s.io/autoscaling/cluster-autoscaler:v1.34.5"
    assert (
        "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/ts-cluster"
    ) in container["command"]
    assert deploy["spec"]["template"]["spec"]["nodeSelector"] == {"trainstack.io/role": "system"}


@pytest.mark.parametrize("version", sorted(catalog.EKS_VERSIONS))
def test_cluster_autoscaler_is_the_latest_patch_of_every_supported_minor(version):
    """Pinned per minor to the newest `cluster-autoscaler-<minor>.<patch>` tag of kubernetes/autoscaler, not `.0`."""
    image = E.cluster_autoscaler_image(version)
    release = image.rsplit(":v", 1)[1]
    assert release.startswith(f"{version}.") and int(release.rsplit(".", 1)[1]) >= 1
    assert (
        release == {"1.31": "1.31.5", "1.32": "1.32.7", "1.33": "1.33.6", "1.34": "1.34.5", "1.35": "1.35.2"}[version]
    )


def test_device_plugin_runs_on_gpu_nodes_whatever_their_taints():
    ds = E.device_plugin_daemonset()
    spec = ds["spec"]["template"]["spec"]
    group = E.node_group_specs(eks_cluster(), "dev-eks")[0]
    assert spec["nodeSelector"].items() <= group.labels.items()
    for taint in group.k8s_taints:
        assert tolerated(taint, spec["tolerations"])
    # Bottlerocket nodes run the plugin of their own: ours stays off them.
    raw = cluster_config("eks", gpu={"instanceTypes": ["p3.2xlarge"]}, eks={"amiType": "BOTTLEROCKET_x86_64_NVIDIA"})
    bottlerocket = E.node_group_specs(C.parse_config(raw, stack="x", now=NOW).cluster, "x")[0]
    assert not spec["nodeSelector"].items() <= bottlerocket.labels.items()


# ------------------------------------------------------------------------------ teardown


@pytest.fixture(scope="module")
def update_nodegroup_shape():
    model = botocore.session.get_session().get_service_model("eks")
    return model.operation_model("UpdateNodegroupConfig").input_shape


def test_teardown_request_is_valid_for_botocore_and_keeps_the_autoscaler_out(update_nodegroup_shape):
    from botocore.validate import ParamValidator

    request = E.scale_node_group_to_zero_request("ts-cluster", "gpu-p3-2xlarge", 4)
    report = ParamValidator().validate(request, update_nodegroup_shape)
    assert not report.has_errors(), report.generate_report()
    assert request["scalingConfig"] == {"minSize": 0, "maxSize": 4, "desiredSize": 0}
    assert request["taints"]["addOrUpdateTaints"][0]["effect"] == "NO_SCHEDULE"


@settings(max_examples=30, deadline=None)
@given(max_size=st.integers(0, 256), taint=st.booleans())
def test_teardown_request_max_size_is_never_below_the_api_minimum(update_nodegroup_shape, max_size, taint):
    from botocore.validate import ParamValidator

    request = E.scale_node_group_to_zero_request("c", "g", max_size, taint=taint)
    assert not ParamValidator().validate(request, update_nodegroup_shape).has_errors()
    minimum = update_nodegroup_shape.members["scalingConfig"].members["maxSize"].metadata["min"]
    assert request["scalingConfig"]["maxSize"] >= minimum == 1


def test_with_a_workdir_the_container_fetches_the_code_then_runs_the_same_command():
    from trainstack.model.code_delivery import CODE_URI_ENV, container_entry

    cluster = eks_cluster(nodes=2)
    ns = E.namespace_name("dev-eks")
    uri = "s3://artifacts-bucket/artifacts/alice/dev-eks/code/abc.tar.gz"
    spec = E.job_spec(cluster)
    job = E.training_job(spec, stack="dev-eks", namespace=ns, locations=LOCATIONS, region="us-east-1", code_uri=uri)
    container = pod_spec(job)["containers"][0]
    assert container["command"] == container_entry(E.container_command(spec, ns))
    # The entry execs the launcher, which runs torchrun (exit codes and signals pass straight through).
    assert container["command"][3:5] == ["python3", "-c"] and "torchrun" in container["command"]
    assert {"name": CODE_URI_ENV, "value": uri} in container["env"]
    # The entry unpacks into a writable emptyDir, whatever the image's /opt/ml allows a non-root uid.
    assert {"name": "code", "mountPath": "/opt/ml/code"} in container["volumeMounts"]
    assert {"name": "code", "emptyDir": {}} in pod_spec(job)["volumes"]
    kubernetes_validate().validate(job, "1.35", strict=True)


def test_gpu_groups_carry_the_accelerator_label_cluster_autoscaler_reads():
    """Without it CA counts a fresh GPU node (device plugin not up yet) as a node with no GPU and launches more."""
    from tests.helpers import cluster_config
    from trainstack.model.config import parse_config

    cfg = parse_config(cluster_config("eks", gpu={"instanceTypes": ["p3.2xlarge"]}), stack="dev")
    spec = E.node_group_specs(cfg.cluster, "dev")[0]
    assert spec.labels["k8s.amazonaws.com/accelerator"] == "nvidia-v100"
    # ... and the node-template tags of a group at zero carry it too (scale-up from zero).
    assert any(k.endswith("label/k8s.amazonaws.com/accelerator") for k in spec.autoscaler_tags())


# ------------------------------------------------------------------------------ pod security and isolation


def test_training_pods_meet_the_restricted_pod_security_standard_their_namespace_enforces():
    """restricted (kubernetes.io/docs/concepts/security/pod-security-standards): non-root, no privilege
    escalation, every capability dropped, the runtime's seccomp profile; only emptyDir volumes."""
    job = job_manifest(eks_cluster(nodes=2))
    spec = pod_spec(job)
    container = spec["containers"][0]
    assert spec["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
    }
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert "privileged" not in container["securityContext"] and "hostNetwork" not in spec
    assert all(set(v) == {"name", "emptyDir"} for v in spec["volumes"])
    assert spec["automountServiceAccountToken"] is False  # Pod Identity brings its own token
    # The uid has no home in the image: a writable one, and a name for getpass.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HOME"] == E.HOME_DIR and env["USER"] == "trainstack"
    assert {"name": "home", "mountPath": E.HOME_DIR} in container["volumeMounts"]
    ns = E.namespace_manifest("ts-dev-eks", "dev-eks", E.pod_security_level(E.job_spec(eks_cluster()).run_as_user))
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_an_image_that_needs_root_keeps_the_rest_and_its_namespace_enforces_baseline():
    raw = cluster_config("eks", gpu={"instanceTypes": ["p3.2xlarge"]}, eks={"runAsUser": 0})
    job = E.job_spec(C.parse_config(raw, stack="dev-eks", now=NOW).cluster)
    spec = pod_spec(E.training_job(job, stack="dev-eks", namespace="ts-dev-eks", locations=LOCATIONS, region="r"))
    assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert spec["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "HOME" not in {e["name"] for e in spec["containers"][0]["env"]}
    assert E.pod_security_level(job.run_as_user) == "baseline"


def test_memory_limit_equals_the_request_so_a_runaway_job_is_its_own_oomkill():
    container = pod_spec(job_manifest(eks_cluster()))["containers"][0]
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert limits["memory"] == requests["memory"] and "cpu" not in limits


def test_the_run_namespace_denies_everything_but_its_own_pods_dns_and_aws():
    deny, allow = E.network_policies("ts-dev-eks")
    # Every pod of the namespace, both directions: what no other rule admits is dropped.
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert allow["spec"]["podSelector"] == {} and allow["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    own, dns, aws = allow["spec"]["egress"]
    assert own == {"to": [{"podSelector": {}}]}  # a podSelector alone: this namespace's pods only
    assert dns["to"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
    assert {p["port"] for p in dns["ports"]} == {53}
    block = aws["to"][0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0" and "10.0.0.0/8" in block["except"] and "169.254.169.254/32" in block["except"]
    assert "169.254.170.23/32" not in block["except"]  # the EKS Pod Identity agent stays reachable
    for policy in (deny, allow):
        for version in sorted(catalog.EKS_VERSIONS):
            kubernetes_validate().validate(policy, version, strict=True)


# ------------------------------------------------------------------------------ access entries


def test_configured_roles_become_access_grants_named_with_their_path():
    existing = {"trainstack-ci-train": "arn:aws:iam::111122223333:role/ci/trainstack-ci-train"}
    grants, warnings, errors = E.access_grants(
        [
            ("trainstack:eks.adminRoles", E.CLUSTER_ADMIN_POLICY, ("trainstack-ci-train", "trainstack-ci-reaper")),
            ("trainstack:eks.viewerRoles", E.ADMIN_VIEW_POLICY, ("arn:aws:iam::111122223333:role/auditors",)),
        ],
        existing,
        caller_arn="arn:aws:iam::111122223333:user/alice",
        defaults={"trainstack:eks.adminRoles": ("trainstack-ci-train", "trainstack-ci-reaper")},
        account="111122223333",
    )
    assert grants == [
        E.AccessGrant("arn:aws:iam::111122223333:role/ci/trainstack-ci-train", E.CLUSTER_ADMIN_POLICY),
        E.AccessGrant("arn:aws:iam::111122223333:role/auditors", E.ADMIN_VIEW_POLICY),
    ]
    # A default role the account lacks (no CI set up) is only a warning; nothing is refused.
    assert errors == [] and len(warnings) == 1 and "trainstack-ci-reaper" in warnings[0]


def test_a_listed_role_the_account_lacks_fails_naming_the_key_and_the_fix():
    _, _, errors = E.access_grants(
        [("trainstack:eks.adminRoles", E.CLUSTER_ADMIN_POLICY, ("platform-admins",))],
        {},
        caller_arn="arn:aws:iam::111122223333:user/alice",
        defaults={"trainstack:eks.adminRoles": ("trainstack-ci-train",)},
        account="111122223333",
    )
    assert len(errors) == 1 and errors[0].startswith("trainstack:eks.adminRoles = ['platform-admins']")
    assert "does not exist in account 111122223333" in errors[0] and "Fix:" in errors[0]


def test_the_creator_gets_no_second_entry_and_a_role_in_two_lists_keeps_the_stronger_policy():
    """EKS made the cluster's creator an admin; one principal can have one access entry per cluster."""
    arn = "arn:aws:iam::111122223333:role/trainstack-ci-train"
    wanted = [
        ("trainstack:eks.adminRoles", E.CLUSTER_ADMIN_POLICY, ("trainstack-ci-train", "ops")),
        ("trainstack:eks.viewerRoles", E.ADMIN_VIEW_POLICY, ("ops",)),
    ]
    existing = {"trainstack-ci-train": arn, "ops": "arn:aws:iam::111122223333:role/ops"}
    grants, _, _ = E.access_grants(
        wanted,
        existing,
        caller_arn="arn:aws:sts::111122223333:assumed-role/trainstack-ci-train/GitHubActions",
        defaults={},
        account="111122223333",
    )
    assert grants == [E.AccessGrant("arn:aws:iam::111122223333:role/ops", E.CLUSTER_ADMIN_POLICY)]


def test_access_policy_arns_and_the_role_lookup():
    import re

    assert (
        E.access_policy_arn(E.CLUSTER_ADMIN_POLICY)
        == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    )
    assert E.access_policy_arn(E.ADMIN_VIEW_POLICY, "aws-cn").startswith("arn:aws-cn:eks::aws:cluster-access-policy/")
    pattern = re.compile(E.role_lookup_regex(["trainstack-ci-train", "a.b+c"]))
    assert pattern.search("a.b+c") and pattern.search("trainstack-ci-train") and not pattern.search("aXb+c")
    assert not pattern.search("trainstack-ci-train-old")
