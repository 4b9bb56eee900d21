"""Fixtures of the fake-CLI lifecycle tests: the fake `pulumi` with its state, and the cloud in moto."""

from __future__ import annotations

import pytest
from moto import mock_aws

from tests.fakes.run_harness import Cloud, create_data_lake, install_cloud, make_fake_cli


@pytest.fixture(scope="session")
def program_cache(request, tmp_path_factory):
    """Offline evaluations of the program by the fake CLI, kept across sessions (keyed by config and sources)."""
    cache = getattr(request.config, "cache", None)
    return cache.mkdir("fake-pulumi-programs") if cache is not None else tmp_path_factory.mktemp("programs")


@pytest.fixture
def cli(tmp_path, monkeypatch, platform_outputs, program_cache, fake_pulumi_server):
    monkeypatch.setenv("FAKE_PULUMI_SERVER", fake_pulumi_server)
    return make_fake_cli(tmp_path, monkeypatch, platform_outputs, program_cache)


@pytest.fixture
def cloud(aws_credentials, monkeypatch, platform_outputs):
    c = Cloud()
    with mock_aws():
        create_data_lake(platform_outputs)
        install_cloud(monkeypatch, c)
        yield c
    c.close()
