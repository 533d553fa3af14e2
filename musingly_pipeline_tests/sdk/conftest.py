"""A fresh virtual environment with only musingly-core installed, as a generator service has it.

Made once per test session: ``python -m venv`` and ``pip install`` of a copy of ``sdk/python``
(pip fetches pydantic from the package index). The copy keeps pip's build files out of the checkout
and proves the SDK needs nothing from outside ``sdk/python``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from musingly_pipeline_tests.conftest import PROJECT_ROOT

SDK_DIR = PROJECT_ROOT / "sdk" / "python"
RUNNER = Path(__file__).with_name("guide_runner.py")
GUIDE = Path(__file__).with_name("guide")


def clean_env() -> dict[str, str]:
    """The environment without what would let the venv see this project's packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


@pytest.fixture(scope="session")
def sdk_python(tmp_path_factory) -> Path:
    """The interpreter of a new venv holding musingly-core (from ``sdk/python``) and its dependencies only."""
    base = tmp_path_factory.mktemp("sdk-only")
    source = base / "musingly-core"
    shutil.copytree(SDK_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=clean_env())
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)],
                               capture_output=True, text=True, timeout=900, env=clean_env())
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python


@pytest.fixture(scope="session")
def run_guide(sdk_python, tmp_path_factory):
    """``run_guide(scenario, *args)``: a scenario of guide_runner.py in the SDK-only venv, as JSON."""
    cwd = tmp_path_factory.mktemp("guide-cwd")

    def run(scenario: str, *args: str):
        result = subprocess.run([str(sdk_python), str(RUNNER), scenario, *map(str, args)], cwd=cwd,
                                capture_output=True, text=True, timeout=300, env=clean_env())
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    return run
