"""TrainingNetwork under the mock engine: S3 endpoint everywhere, nothing inbound from outside."""

from __future__ import annotations

import pytest

from trainstack.components.training_network import TrainingNetwork, TrainingNetworkArgs
from trainstack.model.cidr import plan_subnets

TAGS = {"trainstack:owner": "platform"}


@pytest.fixture(scope="module", params=["public", "nat"])
def network(request, run_program):
    egress = request.param
    run = run_program(
        lambda: TrainingNetwork(
            "net",
            TrainingNetworkArgs(region="us-east-1", vpc_cidr="10.40.0.0/16", az_count=3, egress=egress, tags=TAGS),
        )
    )
    return egress, run


def test_s3_gateway_endpoint_is_on_every_route_table(network):
    egress, run = network
    endpoint = run.one("aws:ec2/vpcEndpoint:VpcEndpoint")
    route_tables = run.of_type("aws:ec2/routeTable:RouteTable")
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert endpoint.inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
    assert sorted(endpoint.inputs["routeTableIds"]) == sorted(rt.id for rt in route_tables)
    assert len(route_tables) == (2 if egress == "nat" else 1)


def test_subnets_span_the_azs_with_planned_cidrs(network):
    egress, run = network
    plan = plan_subnets("10.40.0.0/16", 3, egress)
    subnets = run.of_type("aws:ec2/subnet:Subnet")
    assert sorted(s.inputs["cidrBlock"] for s in subnets) == sorted(plan.all)
    public = [s for s in subnets if s.inputs["tags"]["trainstack:tier"] == "public"]
    assert sorted(s.inputs["availabilityZone"] for s in public) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    # Public IPs only where nodes live in public subnets (no NAT to reach ECR otherwise).
    assert all(s.inputs["mapPublicIpOnLaunch"] is (egress == "public") for s in public)


def test_no_ingress_from_the_internet_anywhere(network):
    _, run = network
    for rule in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert rule.inputs.get("cidrIpv4") not in ("0.0.0.0/0",) and rule.inputs.get("cidrIpv6") != "::/0"
        assert "referencedSecurityGroupId" in rule.inputs
    for sg in run.of_type("aws:ec2/securityGroup:SecurityGroup") + run.of_type(
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
    ):
        for rule in sg.inputs.get("ingress", []):
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []) and "::/0" not in rule.get("ipv6CidrBlocks", [])


def test_cluster_members_talk_to_each_other_on_every_port(network):
    _, run = network
    sg = run.one("aws:ec2/securityGroup:SecurityGroup", "cluster-sg")
    rule = run.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["ipProtocol"] == "-1"
    assert rule.inputs["referencedSecurityGroupId"] == rule.inputs["securityGroupId"] == sg.id


def test_default_security_group_is_locked_down(network):
    _, run = network
    default = run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.inputs.get("ingress", []) == [] and default.inputs.get("egress", []) == []


def test_nat_mode_routes_private_subnets_through_one_nat_gateway(network):
    egress, run = network
    nats = run.of_type("aws:ec2/natGateway:NatGateway")
    routes = {r.name: r for r in run.of_type("aws:ec2/route:Route")}
    if egress == "public":
        assert nats == [] and routes["net-public-default"].inputs["gatewayId"].startswith("igw-")
        return
    assert len(nats) == 1
    assert routes["net-private-default"].inputs["natGatewayId"] == nats[0].id
    public_subnet_ids = {s.id for s in run.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("net-public")}
    assert nats[0].inputs["subnetId"] in public_subnet_ids


def test_bad_args_fail_before_any_resource():
    with pytest.raises(ValueError, match="egress"):
        TrainingNetworkArgs(region="us-east-1", egress="open")
    with pytest.raises(ValueError, match="too small"):
        TrainingNetworkArgs(region="us-east-1", vpc_cidr="10.0.0.0/24", az_count=4, egress="nat")


def test_no_flow_logs_unless_asked(network):
    _egress, run = network
    assert run.of_type("aws:ec2/flowLog:FlowLog") == []


def test_flow_logs_capture_all_vpc_traffic_into_the_given_bucket(run_program):
    run = run_program(
        lambda: TrainingNetwork(
            "net", TrainingNetworkArgs(region="us-east-1", flow_logs_bucket_arn="arn:aws:s3:::platform-logs")
        )
    )
    flow = run.one("aws:ec2/flowLog:FlowLog").inputs
    assert flow["vpcId"] == run.one("aws:ec2/vpc:Vpc").id and flow["trafficType"] == "ALL"
    assert flow["logDestinationType"] == "s3" and flow["logDestination"] == "arn:aws:s3:::platform-logs/vpc-flow-logs"
    assert "iamRoleArn" not in flow  # delivery to S3 goes through the bucket policy
