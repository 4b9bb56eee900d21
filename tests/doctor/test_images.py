"""SSM parameters and AMIs on moto (its published /aws/service parameters and its images)."""

from __future__ import annotations

import dataclasses

import boto3

from trainstack.doctor.images import check_images
from trainstack.doctor.result import Status


def _with_parameter(ctx, name: str, image_id: str) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(Name=name, Value=image_id, Type="String")
    ctx.facts = dataclasses.replace(ctx.facts, ssm_parameters=(name,))


def test_a_parameter_aws_does_not_publish_in_the_region_fails(make_ctx):
    ctx = make_ctx("dev-ec2")  # the DLAMI parameter: moto publishes none
    [check] = check_images(ctx)
    assert check.status is Status.FAIL
    assert (
        check.name
        == "SSM parameter /aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"
    )
    assert "not found in us-east-1" in check.detail


def test_the_published_ecs_gpu_parameter_and_its_image_pass(public_images, make_ctx):
    ctx = make_ctx("dev-ecs")  # moto publishes the ECS GPU parameter and holds its image
    param, image = check_images(ctx)
    assert param.status is Status.PASS and param.detail.startswith("ami-")
    assert image.status is Status.PASS and "al2023-ami-ecs-gpu-hvm" in image.detail


def test_a_pinned_image_that_does_not_exist_fails(make_ctx):
    ctx = make_ctx("dev-ecs")
    ctx.facts = dataclasses.replace(ctx.facts, pinned_ami="ami-0123456789abcdef0", ssm_parameters=())
    [image] = check_images(ctx)
    assert (
        image.status is Status.FAIL and "gpu.amiId = ami-0123456789abcdef0: no such image in us-east-1" in image.detail
    )


def test_an_available_image_passes_with_its_driver_row(make_ctx):
    ctx = make_ctx("dev-ecs")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.register_image(Name="al2023-ami-ecs-gpu-hvm-test", Architecture="x86_64", RootDeviceName="/dev/xvda")
    _with_parameter(ctx, "/trainstack-test/ecs-gpu", image["ImageId"])
    param, check = check_images(ctx)
    assert check.status is Status.PASS
    assert "Volta: proprietary module, R580" in check.detail


def test_an_image_whose_driver_no_longer_drives_volta_fails(make_ctx):
    ctx = make_ctx("dev-ecs")  # p3: Volta, R580 at most
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.register_image(
        Name="dlami-test",
        Description="Supported EC2 instances: P3, G4dn. NVIDIA driver version: 595.45.04. CUDA 13",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
    )
    _with_parameter(ctx, "/trainstack-test/dlami", image["ImageId"])
    _, check = check_images(ctx)
    assert check.status is Status.FAIL
    assert "ships NVIDIA driver 595; Volta (p3) needs R580 or older" in check.detail


def test_an_image_that_does_not_list_the_family_fails(make_ctx):
    ctx = make_ctx("dev-ec2")  # g4dn
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.register_image(
        Name="dlami-test",
        Description="Supported EC2 instances: G5, G6, P5. NVIDIA driver version: 595.45.04",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
    )
    _with_parameter(ctx, "/trainstack-test/dlami", image["ImageId"])
    _, check = check_images(ctx)
    assert check.status is Status.FAIL and "not g4dn" in check.detail


def test_eks_and_sagemaker_images_are_not_ours_to_check(make_ctx):
    assert [c.status for c in check_images(make_ctx("dev-eks"))] == [Status.SKIP]
    assert [c.status for c in check_images(make_ctx("dev-sagemaker"))] == [Status.SKIP]
