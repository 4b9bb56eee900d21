"""The eks backend's requests and manifests (pure): what EKS, Kubernetes and the scheduler get."""

from __future__ import annotations

import copy

import botocore.session
import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import NOW, cluster_config
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


def test_indexed_job_with_headless_service_and_static_rendezvous_on_rank_zero():
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
    argv = spec["containers"][0]["command"]
    assert argv[0] == "torchrun" and argv[argv.index("--nnodes") + 1] == "3"
    assert argv[argv.index("--node_rank") + 1] == "$(JOB_COMPLETION_INDEX)"
    assert argv[argv.index("--master_addr") + 1] == f"train-0.train.{ns}.svc"
    assert argv[argv.index("--master_port") + 1] == "29500" == str(service["spec"]["ports"][0]["port"])
    assert argv[-1] == "train.py"
    assert argv[argv.index("--rdzv_conf") + 1] == "timeout=900"  # job.peerTimeoutMinutes
    affinity = spec["affinity"]
    assert (
        affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"]
        == "kubernetes.io/hostname"
    )
    zone = affinity["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert zone["topologyKey"] == "topology.kubernetes.io/zone"


def test_single_gpu_job_runs_the_command_as_is_without_a_service():
    cluster = eks_cluster(nodes=1, gpus=1)
    spec = pod_spec(job_manifest(cluster))
    assert spec["containers"][0]["command"] == ["python", "train.py"]
    assert "subdomain" not in spec and "affinity" not in spec


def test_job_survives_spot_interruptions_stops_at_the_deadline_and_does_not_block_up():
    cluster = eks_cluster()
    job = job_manifest(cluster)
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert job["spec"]["backoffLimit"] == 0
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
        kubernetes_validate.validate(m, version, strict=True)


def test_the_schema_check_would_catch_a_misspelt_field():
    job = copy.deepcopy(job_manifest(eks_cluster()))
    pod_spec(job)["nodeSelectr"] = {"x": "y"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, "1.35", strict=True)


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
    assert container["command"][3:5] == ["torchrun", "--nnodes"]
    assert {"name": CODE_URI_ENV, "value": uri} in container["env"]
    kubernetes_validate.validate(job, "1.35", strict=True)


def test_gpu_groups_carry_the_accelerator_label_cluster_autoscaler_reads():
    """Without it CA counts a fresh GPU node (device plugin not up yet) as a node with no GPU and launches more."""
    from tests.helpers import cluster_config
    from trainstack.model.config import parse_config

    cfg = parse_config(cluster_config("eks", gpu={"instanceTypes": ["p3.2xlarge"]}), stack="dev")
    spec = E.node_group_specs(cfg.cluster, "dev")[0]
    assert spec.labels["k8s.amazonaws.com/accelerator"] == "nvidia-v100"
    # ... and the node-template tags of a group at zero carry it too (scale-up from zero).
    assert any(k.endswith("label/k8s.amazonaws.com/accelerator") for k in spec.autoscaler_tags())
