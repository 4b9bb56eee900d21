"""Step Functions AWS SDK integrations as the service runs them, on moto's States Language interpreter.

moto executes state machines with its port of LocalStack's interpreter (`moto[stepfunctions]`,
`mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`): Parallel, Retry, Catch, Choice and
Wait are its semantics, not ours. Its `aws-sdk` task hands `Parameters` to boto3 unconverted, while Step
Functions takes them in PascalCase and maps them onto the API's own member names ("Parameters ... are
expressed in PascalCase, even if the native service API is in camelCase":
docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html). This patch does that mapping
with botocore's model (`trainstack.model.scheduler_input.from_universal`, the same conversion the plan
validates Scheduler inputs with) and fails on a member that is not PascalCase, as the service would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def pascal_case_sdk_tasks() -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """Patch moto's aws-sdk task for the block; yields the calls made: (service, apiAction, botocore request)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as sdk,
    )

    from trainstack.model.scheduler_input import from_universal

    calls: list[tuple[str, str, dict[str, Any]]] = []
    original = sdk.StateTaskServiceAwsSdk._normalise_parameters

    def normalise(self, parameters: dict, boto_service_name=None, service_action_name=None) -> None:
        service, action = self.resource.api_name, self.resource.api_action
        converted, wrong = from_universal(service, action, dict(parameters))
        if wrong:
            raise ValueError(f"aws-sdk:{service}:{action}: members not in PascalCase: {', '.join(wrong)}")
        calls.append((service, action, converted))
        parameters.clear()
        parameters.update(converted)

    sdk.StateTaskServiceAwsSdk._normalise_parameters = normalise  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        sdk.StateTaskServiceAwsSdk._normalise_parameters = original  # type: ignore[method-assign]
