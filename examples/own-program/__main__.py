"""Your own Pulumi program, built from trainstack's components: no trainstack stack file, no trainstack config.

A VPC for GPU nodes, an encrypted data lake and a spot GPU Auto Scaling group that sits at zero until
you (or your autoscaler) raise it. Every argument is a plain Python value or an output of another
resource; each component's Args dataclass documents its fields (see README.md).
"""

import pulumi

from trainstack.backends.ec2 import DLAMI_BASE_OSS_AL2023
from trainstack.components.data_lake import DataLake, DataLakeArgs
from trainstack.components.gpu_autoscaling_group import GpuAutoScalingGroup, GpuAutoScalingGroupArgs
from trainstack.components.training_network import TrainingNetwork, TrainingNetworkArgs

region = pulumi.Config("aws").require("region")
settings = pulumi.Config()  # this project's own (optional) settings: `pulumi config set maxGpus 4`
tags = {"team": "vision", "project": pulumi.get_project()}

# The lake: raw/curated/artifacts buckets, SSE-KMS, versioned, public access blocked, TLS only.
# protect=False only because this is an example you will destroy again.
lake = DataLake(
    "lake",
    DataLakeArgs(protect=False, checkpoint_retention_days=7, region=region, flow_logs=True, tags=tags),
)

# Two AZs, public egress (no NAT gateway to pay for), an S3 gateway endpoint, flow logs into the lake.
network = TrainingNetwork(
    "net",
    TrainingNetworkArgs(region=region, az_count=2, flow_logs_bucket_arn=lake.log_bucket.arn, tags=tags),
)

# Spot GPUs at zero: IMDSv2, an encrypted root volume, shell access through SSM (no SSH key).
gpus = GpuAutoScalingGroup(
    "gpus",
    GpuAutoScalingGroupArgs(
        instance_types=("g5.xlarge", "g5.2xlarge"),
        subnet_ids=[s.id for s in network.compute_subnets],
        security_group_id=network.security_group.id,
        user_data="#!/bin/bash\necho 'start your training container here'\n",
        max_size=settings.get_int("maxGpus") or 2,
        ami_ssm_parameter=DLAMI_BASE_OSS_AL2023,  # the Deep Learning AMI (AL2023, NVIDIA open driver)
        spot_percent=100,
        tags=tags,
    ),
)

pulumi.export("rawBucket", lake.buckets["raw"].bucket)
pulumi.export("artifactsBucket", lake.buckets["artifacts"].bucket)
pulumi.export("kmsKeyArn", lake.kms_key.arn)
pulumi.export("gpuGroupName", gpus.group.name)
pulumi.export(
    "scaleUpCommand",
    pulumi.Output.concat(
        "aws autoscaling set-desired-capacity --desired-capacity 1 --auto-scaling-group-name ", gpus.group.name
    ),
)
