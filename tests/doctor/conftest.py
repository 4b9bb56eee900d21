from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.doctor.fakes import clients, facts_of


@pytest.fixture(scope="session", autouse=True)
def _example_plans_serve_plan_of(example_plans) -> None:
    """`fakes.plan_of(stack)` is `trainstack plan` of an example stack: the session's example plans, not a second
    evaluation of each in this process (and only of the stacks the doctor's tests ask for)."""
    from tests.doctor import fakes

    fakes._EXAMPLES = example_plans


@pytest.fixture
def moto(aws_credentials) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def public_images(monkeypatch) -> None:
    """moto's catalogue of public AMIs and the SSM parameters naming them (off in the other tests:
    tests/conftest.py); set before the test's first EC2 call instantiates moto's EC2 backend."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "true")


@pytest.fixture
def make_ctx(moto) -> Callable[..., Any]:
    """A doctor Context for an example stack on moto, with the caller's identity already known."""
    from tests.helpers import ROOT
    from trainstack.doctor.aws import Aws
    from trainstack.doctor.context import Context, Identity
    from trainstack.doctor.identity import check_identity

    def make(stack: str, *, identity: bool = True, **kw: Any) -> Any:
        facts = facts_of(stack)
        ctx = Context(facts=facts, aws=Aws(facts.region, factory=clients()), root=ROOT, **kw)
        if identity:
            check_identity(ctx)
            assert isinstance(ctx.identity, Identity)
        return ctx

    return make
