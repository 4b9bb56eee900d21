"""Evaluate a Pulumi program offline under Pulumi's mock engine.

`run_offline` is what `trainstack plan` and the test suite share: it installs realistic mocks
(ids, ARNs and autonamed physical names in AWS's formats, deterministic per logical name),
records every registration with its parent, protection and ignore-changes (which Pulumi's own
MockMonitor drops), runs the program to completion, awaits the stack outputs and returns them.
No AWS credentials and no Pulumi CLI are involved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import settings as psettings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ACCOUNT_ID = "123456789012"
MOCK_AMI = "ami-0abcdef1234567890"


@dataclass
class ResourceRecord:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    protect: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    provider: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    id: str = ""

    @property
    def parent_name(self) -> str:
        return self.parent.rsplit("::", 1)[-1] if self.parent else ""


@dataclass
class OfflineRun:
    project: str
    stack: str
    resources: list[ResourceRecord]
    outputs: dict[str, Any]
    invokes: list[tuple[str, dict]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (level, message) the program logged

    @property
    def warnings(self) -> list[str]:
        return [m for level, m in self.logs if level == "WARNING"]

    def of_type(self, type_: str) -> list[ResourceRecord]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_contains: str = "") -> ResourceRecord:
        found = [r for r in self.of_type(type_) if name_contains in r.name]
        if len(found) != 1:
            raise AssertionError(f"expected one {type_} named *{name_contains}*, found {[r.name for r in found]}")
        return found[0]

    def named(self, name: str) -> ResourceRecord:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)


def _short(seed: str, n: int = 7) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def _uuid(seed: str) -> str:
    return str(uuid.UUID(hashlib.md5(seed.encode()).hexdigest()))


_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
}


class OfflineMocks(pmocks.Mocks):
    """Mocks that answer like AWS would, closely enough for every trainstack code path."""

    def __init__(self, region: str = "us-east-1", stack_outputs: Mapping[str, Mapping[str, Any]] | None = None):
        self.region = region
        self.stack_outputs = dict(stack_outputs or {})
        self.invokes: list[tuple[str, dict]] = []

    # -- invokes -------------------------------------------------------------------------------
    def call(self, args: pmocks.MockCallArgs):
        token, a = args.token, dict(args.args)
        self.invokes.append((token, a))
        region = a.get("region") or self.region
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{c}" for c in "abcdef"]
            return {"names": names, "zoneIds": [f"use1-az{i + 1}" for i in range(6)], "id": region,
                    "groupNames": names, "state": a.get("state")}
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
                    "userId": "AIDAOFFLINE", "id": ACCOUNT_ID}
        if token == "aws:index/getRegion:getRegion":
            return {"name": region, "region": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com",
                    "description": region}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws"}
        if token == "aws:ssm/getParameter:getParameter":
            name = a.get("name", "")
            return {"name": name, "value": MOCK_AMI, "insecureValue": MOCK_AMI, "type": "String",
                    "arn": f"arn:aws:ssm:{region}::parameter{name}", "version": 1, "id": name,
                    "withDecryption": True}
        if token == "aws:ec2/getAmi:getAmi":
            ami = next((f["values"][0] for f in a.get("filters", []) if f.get("name") == "image-id"), MOCK_AMI)
            return {"id": ami, "imageId": ami, "rootDeviceName": "/dev/xvda", "architecture": "x86_64",
                    "name": "offline-gpu-ami", "ownerId": "amazon", "arn": f"arn:aws:ec2:{region}::image/{ami}"}
        raise NotImplementedError(f"offline mocks do not answer invoke {token}; add it to scripts/offline.py")

    # -- resources -----------------------------------------------------------------------------
    def new_resource(self, args: pmocks.MockResourceArgs):
        t, name, inputs = args.typ, args.name, dict(args.inputs)
        if t == "pulumi:pulumi:StackReference":
            ref = inputs.get("name") or args.resource_id or name
            if ref not in self.stack_outputs:
                raise KeyError(f"offline run has no outputs for stack reference {ref!r}")
            return ref, {"name": ref, "outputs": dict(self.stack_outputs[ref]), "secretOutputNames": []}
        if not args.custom:
            return "", inputs
        seed = f"{t}::{name}"
        rid = _ID_PREFIX.get(t, "") + (_short(seed, 17) if t in _ID_PREFIX else f"{name}-{_short(seed)}")
        state = dict(inputs)
        physical = inputs.get("name") or (inputs["namePrefix"] + _short(seed, 8) if inputs.get("namePrefix") else f"{name}-{_short(seed)}")
        r, acct = self.region, ACCOUNT_ID
        svc_mod = t.split(":")[1].split("/")[0] if ":" in t else ""
        arn = f"arn:aws:{svc_mod}:{r}:{acct}:{name}/{rid}"

        if t == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or (inputs.get("bucketPrefix", "") + _short(seed, 8) if inputs.get("bucketPrefix") else f"{name}-{_short(seed)}")
            rid = bucket
            arn = f"arn:aws:s3:::{bucket}"
            state.update(bucket=bucket, bucketDomainName=f"{bucket}.s3.amazonaws.com",
                         bucketRegionalDomainName=f"{bucket}.s3.{r}.amazonaws.com", region=r)
        elif t == "aws:kms/key:Key":
            rid = _uuid(seed)
            arn = f"arn:aws:kms:{r}:{acct}:key/{rid}"
            state.update(keyId=rid)
        elif t == "aws:kms/alias:Alias":
            rid = physical
            arn = f"arn:aws:kms:{r}:{acct}:{physical}"
            state.update(name=physical, targetKeyArn=inputs.get("targetKeyId"))
        elif t in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile", "aws:iam/policy:Policy"):
            kind = {"aws:iam/role:Role": "role", "aws:iam/instanceProfile:InstanceProfile": "instance-profile",
                    "aws:iam/policy:Policy": "policy"}[t]
            rid = physical
            arn = f"arn:aws:iam::{acct}:{kind}/{physical}"
            state.update(name=physical, uniqueId=f"AROA{_short(seed, 16).upper()}")
        elif t == "aws:iam/rolePolicy:RolePolicy":
            rid = f"{inputs.get('role', 'role')}:{physical}"
            state.update(name=physical)
        elif t == "aws:autoscaling/group:Group":
            rid = physical
            arn = f"arn:aws:autoscaling:{r}:{acct}:autoScalingGroup:{_uuid(seed)}:autoScalingGroupName/{physical}"
            state.update(name=physical)
        elif t == "aws:ecs/cluster:Cluster":
            arn = f"arn:aws:ecs:{r}:{acct}:cluster/{physical}"
            rid = arn
            state.update(name=physical)
        elif t == "aws:ecs/capacityProvider:CapacityProvider":
            arn = f"arn:aws:ecs:{r}:{acct}:capacity-provider/{physical}"
            rid = physical
            state.update(name=physical)
        elif t == "aws:ecs/taskDefinition:TaskDefinition":
            family = inputs.get("family", physical)
            arn = f"arn:aws:ecs:{r}:{acct}:task-definition/{family}:1"
            rid = family
            state.update(revision=1, arnWithoutRevision=arn.rsplit(":", 1)[0])
        elif t == "aws:cloudwatch/logGroup:LogGroup":
            rid = physical
            arn = f"arn:aws:logs:{r}:{acct}:log-group:{physical}"
            state.update(name=physical)
        elif t == "aws:ec2/launchTemplate:LaunchTemplate":
            arn = f"arn:aws:ec2:{r}:{acct}:launch-template/{rid}"
            state.update(latestVersion=1, defaultVersion=1, name=physical)
        elif t == "aws:ec2/placementGroup:PlacementGroup":
            rid = physical
            arn = f"arn:aws:ec2:{r}:{acct}:placement-group/{physical}"
            state.update(name=physical, placementGroupId=f"pg-{_short(seed, 17)}")
        elif t == "aws:sagemaker/trainingJob:TrainingJob":
            job = inputs.get("trainingJobName", physical)
            rid = job
            arn = f"arn:aws:sagemaker:{r}:{acct}:training-job/{job.lower()}"
        elif t == "aws:scheduler/schedule:Schedule":
            rid = f"default/{physical}"
            arn = f"arn:aws:scheduler:{r}:{acct}:schedule/default/{physical}"
            state.update(name=physical, groupName="default")
        elif t == "aws:glue/catalogDatabase:CatalogDatabase":
            rid = f"{acct}:{physical}"
            arn = f"arn:aws:glue:{r}:{acct}:database/{physical}"
        elif t in ("aws:ec2/subnet:Subnet", "aws:ec2/vpc:Vpc", "aws:ec2/securityGroup:SecurityGroup",
                   "aws:ec2/routeTable:RouteTable", "aws:ec2/internetGateway:InternetGateway",
                   "aws:ec2/natGateway:NatGateway", "aws:ec2/vpcEndpoint:VpcEndpoint"):
            arn = f"arn:aws:ec2:{r}:{acct}:{rid.split('-')[0]}/{rid}"
            if t == "aws:ec2/vpcEndpoint:VpcEndpoint":
                state.update(prefixListId=f"pl-{_short(seed, 8)}")
            if t == "aws:ec2/securityGroup:SecurityGroup":
                state.update(name=physical)
        elif t == "aws:ec2/eip:Eip":
            state.update(publicIp="203.0.113.10", allocationId=rid)
        if "tags" in inputs:
            state["tagsAll"] = inputs["tags"]
        state.setdefault("arn", arn)
        state.setdefault("id", rid)
        return rid, state


class RecordingMonitor(pmocks.MockMonitor):
    """MockMonitor that also keeps what a plan needs to show: parent, protect, ignoreChanges."""

    def __init__(self, mocks: pmocks.Mocks):
        super().__init__(mocks)
        self.records: list[ResourceRecord] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            reg = self.resources.get(response.urn)
            from pulumi.runtime import rpc

            inputs = rpc.deserialize_properties(request.object)
            self.records.append(ResourceRecord(
                type=request.type, name=request.name, urn=response.urn, parent=request.parent,
                custom=bool(request.custom), protect=bool(request.protect),
                retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
                ignore_changes=list(request.ignoreChanges), provider=request.provider,
                inputs=_plain(inputs), state=_plain(reg.state if reg else {}), id=reg.id if reg else ""))
        return response

    def ReadResource(self, request):
        response = super().ReadResource(request)
        reg = self.resources.get(response.urn)
        self.records.append(ResourceRecord(
            type=request.type, name=request.name, urn=response.urn, parent=request.parent, custom=True,
            protect=False, retain_on_delete=False, ignore_changes=[], provider=request.provider,
            inputs={}, state=_plain(reg.state if reg else {}), id=reg.id if reg else ""))
        return response


def _plain(value: Any) -> Any:
    """Deserialized protobuf values -> plain JSON-able Python (ints stay floats as the engine sends them)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def config_strings(raw: Mapping[str, Any]) -> dict[str, str]:
    """Stack-file values -> the strings the Pulumi engine hands a program (objects as JSON)."""
    out = {}
    for k, v in raw.items():
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, (dict, list)):
            out[k] = json.dumps(v)
        else:
            out[k] = str(v)
    return out


class _Collector(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname, record.getMessage()))


def run_offline(
    program: Callable[[], Any],
    *,
    config: Mapping[str, Any],
    project: str = "trainstack",
    stack: str = "dev",
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    preview: bool = False,
) -> OfflineRun:
    """Run `program` under the mock engine with `config`; return the registrations and stack outputs."""
    region = str(config.get("aws:region") or "us-east-1")
    mocks = OfflineMocks(region=region, stack_outputs=stack_outputs)
    monitor = RecordingMonitor(mocks)
    collector = _Collector()
    logger = logging.getLogger(f"trainstack.offline.{stack}")
    logger.handlers[:] = [collector]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    # A fresh root Stack per run: several programs may be evaluated in one process.
    psettings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor,
                            logger=logger)
    pulumi.runtime.set_all_config(config_strings(config), [])
    psettings.SETTINGS.rpc_manager.clear()
    psettings.SETTINGS.outputs.clear()

    collected: dict[str, Any] = {}

    async def _resolve_outputs() -> None:
        root = psettings.get_root_resource()
        for key, value in dict(getattr(root, "outputs", {})).items():
            collected[key] = await pulumi.Output.from_input(value).future(with_unknowns=False)

    def _body():
        result = program()
        return result

    _sync_await(run_pulumi_func(_body))
    _sync_await(_resolve_outputs())
    return OfflineRun(project=project, stack=stack, resources=list(monitor.records),
                      outputs=_plain(collected), invokes=list(mocks.invokes), logs=list(collector.records))
