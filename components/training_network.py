"""TrainingNetwork: the VPC GPU clusters run in.

Subnets in >= 2 AZs (GPU capacity is often out in one AZ), an S3 gateway endpoint on every
route table (training data never crosses a NAT gateway, which would bill per GB), and one
security group that lets cluster members talk to each other on every port (NCCL, torchrun
rendezvous, EFA) while admitting nothing from outside. Optionally VPC flow logs to an S3 bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from trainstack.model.cidr import plan_subnets
from trainstack.model.iam_documents import FLOW_LOGS_PREFIX
from trainstack.model.tags import with_name


@dataclass(frozen=True)
class TrainingNetworkArgs:
    # The AWS region (names the S3 gateway endpoint's service, com.amazonaws.<region>.s3).
    region: str
    # The VPC's IPv4 range; split into one public (and with egress "nat" one private) subnet per AZ.
    vpc_cidr: str = "10.40.0.0/16"
    # How many availability zones get subnets (2 or more: GPU capacity is often out in one AZ).
    az_count: int = 2
    # The zones to use, exactly az_count of them; None: the first az_count available in the region.
    availability_zones: tuple[str, ...] | None = None
    # "public": instances get public IPs behind an internet gateway, nothing inbound is allowed;
    # "nat": compute subnets are private and reach the internet through one NAT gateway (~$33/month).
    egress: str = "public"
    # An S3 bucket ARN: VPC flow logs (all traffic) go there under `vpc-flow-logs/`. None: no flow logs.
    flow_logs_bucket_arn: pulumi.Input[str] | None = None
    # Tags on every resource (a `Name` is added where the console shows one).
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.egress not in ("public", "nat"):
            raise ValueError(f"egress must be 'public' or 'nat', not {self.egress!r}")
        if isinstance(self.az_count, bool) or not isinstance(self.az_count, int) or self.az_count < 1:
            raise ValueError(f"az_count = {self.az_count!r}: must be a whole number of zones, at least 1")
        if self.availability_zones is not None and len(self.availability_zones) != self.az_count:
            raise ValueError(
                f"availability_zones lists {len(self.availability_zones)} zone(s) but az_count is {self.az_count}: "
                "list exactly az_count zones"
            )
        try:
            plan_subnets(self.vpc_cidr, self.az_count, self.egress)
        except ValueError as exc:  # a CIDR too small for the subnets, not a network address, ...
            raise ValueError(
                f"vpc_cidr = {self.vpc_cidr!r} (az_count {self.az_count}, egress {self.egress}): {exc}"
            ) from None


class TrainingNetwork(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    public_subnets: list[aws.ec2.Subnet]
    private_subnets: list[aws.ec2.Subnet]
    route_tables: list[aws.ec2.RouteTable]
    s3_endpoint: aws.ec2.VpcEndpoint
    security_group: aws.ec2.SecurityGroup
    availability_zones: list[str]

    def __init__(self, name: str, args: TrainingNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trainstack:network:TrainingNetwork", name, None, opts)
        self._name = name
        self._args = args
        self.availability_zones = list(args.availability_zones or self._first_zones(args.az_count))
        plan = plan_subnets(args.vpc_cidr, args.az_count, args.egress)

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=with_name(args.tags, f"{name}-vpc"),
            opts=self._child(),
        )
        self._lock_down_default_security_group()
        self.internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags=with_name(args.tags, f"{name}-igw"), opts=self._child()
        )

        public_ip = args.egress == "public"
        self.public_subnets = self._subnets("public", plan.public, map_public_ip=public_ip)
        self.private_subnets = self._subnets("private", plan.private, map_public_ip=False)
        public_rt = self._route_table("public", self.public_subnets, gateway_id=self.internet_gateway.id)
        self.route_tables = [public_rt]
        self.nat_gateway = None
        if args.egress == "nat":
            eip = aws.ec2.Eip(
                f"{name}-nat-eip", domain="vpc", tags=with_name(args.tags, f"{name}-nat-eip"), opts=self._child()
            )
            # One NAT gateway: training egress is light (S3 goes through the gateway endpoint), and a
            # NAT per AZ would bill ~$33/month each while no one trains.
            self.nat_gateway = aws.ec2.NatGateway(
                f"{name}-nat",
                allocation_id=eip.id,
                subnet_id=self.public_subnets[0].id,
                tags=with_name(args.tags, f"{name}-nat"),
                opts=self._child(depends_on=[self.internet_gateway]),
            )
            self.route_tables.append(
                self._route_table("private", self.private_subnets, nat_gateway_id=self.nat_gateway.id)
            )

        self.s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            vpc_endpoint_type="Gateway",
            service_name=f"com.amazonaws.{args.region}.s3",
            route_table_ids=[rt.id for rt in self.route_tables],
            tags=with_name(args.tags, f"{name}-s3"),
            opts=self._child(),
        )
        self.security_group = self._cluster_security_group()

        self.compute_subnets = self.private_subnets if args.egress == "nat" else self.public_subnets
        self.flow_log = None
        if args.flow_logs_bucket_arn is not None:
            # To S3: no IAM role needed (the bucket policy admits the log delivery service).
            self.flow_log = aws.ec2.FlowLog(
                f"{name}-flow-logs",
                vpc_id=self.vpc.id,
                traffic_type="ALL",
                log_destination_type="s3",
                log_destination=pulumi.Output.concat(args.flow_logs_bucket_arn, "/", FLOW_LOGS_PREFIX.rstrip("/")),
                max_aggregation_interval=600,
                tags=with_name(args.tags, f"{name}-flow-logs"),
                opts=self._child(),
            )
        self.register_outputs(
            {
                "vpcId": self.vpc.id,
                "computeSubnetIds": [s.id for s in self.compute_subnets],
                "securityGroupId": self.security_group.id,
                "s3EndpointId": self.s3_endpoint.id,
            }
        )

    # -- helpers ---------------------------------------------------------------------------------
    def _child(self, **kw) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kw)

    @staticmethod
    def _first_zones(count: int) -> list[str]:
        zones = aws.get_availability_zones(
            state="available", filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}]
        )
        if len(zones.names) < count:
            raise ValueError(f"the region has {len(zones.names)} available AZs, fewer than azCount {count}")
        return list(zones.names[:count])

    def _subnets(self, tier: str, cidrs, *, map_public_ip: bool) -> list[aws.ec2.Subnet]:
        out = []
        # `cidrs` is empty for the private tier of a public network.
        for i, (cidr, az) in enumerate(zip(cidrs, self.availability_zones, strict=False)):
            out.append(
                aws.ec2.Subnet(
                    f"{self._name}-{tier}-{i}",
                    vpc_id=self.vpc.id,
                    cidr_block=cidr,
                    availability_zone=az,
                    map_public_ip_on_launch=map_public_ip,
                    tags=with_name({**self._args.tags, "trainstack:tier": tier}, f"{self._name}-{tier}-{az}"),
                    opts=self._child(),
                )
            )
        return out

    def _route_table(self, tier: str, subnets, **target) -> aws.ec2.RouteTable:
        rt = aws.ec2.RouteTable(
            f"{self._name}-{tier}-rt",
            vpc_id=self.vpc.id,
            tags=with_name(self._args.tags, f"{self._name}-{tier}-rt"),
            opts=self._child(),
        )
        aws.ec2.Route(
            f"{self._name}-{tier}-default",
            route_table_id=rt.id,
            destination_cidr_block="0.0.0.0/0",
            opts=self._child(),
            **target,
        )
        for i, subnet in enumerate(subnets):
            aws.ec2.RouteTableAssociation(
                f"{self._name}-{tier}-rta-{i}", route_table_id=rt.id, subnet_id=subnet.id, opts=self._child()
            )
        return rt

    def _lock_down_default_security_group(self) -> None:
        # Adopting the default SG with no rules removes its allow-all-from-members rule (CIS 5.4):
        # anything launched without an explicit group gets no network at all.
        aws.ec2.DefaultSecurityGroup(
            f"{self._name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags=with_name(self._args.tags, f"{self._name}-default-sg-locked"),
            opts=self._child(),
        )

    def _cluster_security_group(self) -> aws.ec2.SecurityGroup:
        sg = aws.ec2.SecurityGroup(
            f"{self._name}-cluster-sg",
            vpc_id=self.vpc.id,
            description="trainstack GPU nodes: all traffic between members, nothing inbound from outside",
            tags=with_name(self._args.tags, f"{self._name}-cluster-sg"),
            opts=self._child(),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-cluster-from-members",
            security_group_id=sg.id,
            referenced_security_group_id=sg.id,
            ip_protocol="-1",
            description="NCCL, torchrun rendezvous and EFA between cluster members",
            tags=self._args.tags,
            opts=self._child(),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-cluster-egress",
            security_group_id=sg.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="-1",
            description="S3 (via the gateway endpoint), ECR, SSM and the AWS APIs",
            tags=self._args.tags,
            opts=self._child(),
        )
        return sg
