"""What `pip install .` puts into site-packages: one package, `trainstack`, with its data and console script."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.helpers import ROOT


def test_the_wheel_holds_one_top_level_package_with_components_scripts_and_data(tmp_path):
    # --no-build-isolation: the pinned setuptools/wheel of the test extra, no download.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        check=True,
        cwd=tmp_path,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("trainstack-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"trainstack", wheel.name.split("-py3")[0] + ".dist-info"}
    for needed in (
        "trainstack/components/data_lake.py",
        "trainstack/components/__init__.py",
        "trainstack/scripts/ec2_bootstrap.py",
        "trainstack/model/torchrun.py",
        "trainstack/model/data/gpu_prices.csv",
        "trainstack/policies/PulumiPolicy.yaml",
        "trainstack/policies/__main__.py",
        "trainstack/programs/program.py",
        "trainstack/cli/plan.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if "/tests/" in n or n.startswith("trainstack/stacks/")]
    entry = zipfile.ZipFile(wheel).read(wheel.name.split("-py3")[0] + ".dist-info/entry_points.txt").decode()
    assert "trainstack = trainstack.cli.entry:main" in entry
