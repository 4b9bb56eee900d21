"""The ecs backend's config hook (named by `trainstack/backends/ecs.py`): what only its task definition asks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainstack.model.config.parse import stock_image
from trainstack.model.config.table import IMAGE_RE

if TYPE_CHECKING:
    from trainstack.model.config.parse import ClusterDraft


def check(draft: ClusterDraft) -> dict[str, Any]:
    """An ECS task's command is the image's CMD, behind the image's own ENTRYPOINT: the SageMaker variant of
    a Deep Learning Container re-parses the code-fetching entry script there."""
    job = draft.job
    m = IMAGE_RE.match(job.image) if job.image else None
    tag = (m.group("tag") or "") if m else ""
    if draft.job_reader.has("workdir") and stock_image(job.image) and tag.endswith("sagemaker"):
        # Its entrypoint (start_with_right_hostname.sh) runs `eval "$@"`, which re-parses the code-fetching
        # entry script as shell; the -ec2 variants exec their arguments unchanged.
        draft.job_reader.fail(
            "image",
            job.image,
            "is the SageMaker variant of a Deep Learning Container, whose entrypoint "
            "re-parses the container command as shell and so breaks the code-fetching entry script",
            f"use the EC2 variant of the same image (tag ending in -ec2), e.g. {job.image[: -len('sagemaker')]}ec2",
        )
    return {}
