"""The package installs as declared: its wheel, put into a fresh virtual environment (no project folder, no
system site-packages), brings its dependencies and data files, and its three console scripts work.

The dependencies are installed from the package index at the versions Pipfile.lock pins (as constraints), so the
test checks pyproject.toml's dependency list, not the project's .venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT_ROOT / "src" / "redss_pipeline"
CONSOLE_SCRIPTS = ("redss-create-uuid-table", "redss-fetch-raw-data", "redss-generate-outputs")

pytestmark = pytest.mark.slow


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources so the build leaves nothing (build/, *.egg-info) in the tree."""
    work = tmp_path_factory.mktemp("build")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", work)
    shutil.copytree(PROJECT_ROOT / "src", work / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    result = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                   "--wheel-dir", str(work / "dist"), str(work)])
    assert result.returncode == 0, result.stderr
    (built,) = (work / "dist").glob("redss_pipeline-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin folder."""
    work = tmp_path_factory.mktemp("venv")
    lock = json.loads((PROJECT_ROOT / "Pipfile.lock").read_text())
    constraints = work / "constraints.txt"
    constraints.write_text("".join(f"{name}{entry['version']}\n" for name, entry in lock["default"].items()
                                   if "version" in entry))
    environment = work / "env"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(environment)
    python = environment / "bin" / "python"
    result = _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--constraint", str(constraints), str(wheel)])
    assert result.returncode == 0, result.stderr[-3000:]
    return environment / "bin"


def test_the_wheel_holds_every_module_and_data_file(wheel):
    """Every module and every file under data/ (at any depth) is in the wheel, at the same path."""
    expected = {
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert expected - names == set()
    assert any(name.startswith("redss_pipeline/data/") for name in names)


def test_the_installed_console_scripts_show_their_usage(installed, tmp_path):
    """--help of each stage runs from the fresh environment, away from the project (so every import resolves)."""
    for script in CONSOLE_SCRIPTS:
        result = _run([str(installed / script), "--help"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: {script} "), result.stdout


def test_the_installed_package_runs_stage_1(installed, tmp_path):
    result = _run([str(installed / "redss-create-uuid-table"), "root"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "root" / "UUIDs" / "phone_uuids.sqlite").is_file()


def test_the_installed_package_without_a_configuration_says_how_to_give_one(installed, tmp_path):
    """An installed package has no project folder: with no configuration found, one usage line (exit 2)."""
    (tmp_path / "root").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "REDSS_PIPELINE_CONFIG"}
    result = _run([str(installed / "redss-generate-outputs"), "me@example.org", "root"], cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: no configuration file: none given, and no pipeline_config.json in the project or the current "
        "folder; give --config FILE or set REDSS_PIPELINE_CONFIG (the project's pipeline_config.json is the "
        "shipped one)"
    ]
    assert not (tmp_path / "root" / "Outputs").exists()


def test_the_installed_package_reads_the_configuration_it_is_given(installed, tmp_path):
    """With --config, the installed stage 3 reads the project's shipped configuration and its scheme files."""
    (tmp_path / "root").mkdir()
    result = _run([str(installed / "redss-generate-outputs"), "--config", str(PROJECT_ROOT / "pipeline_config.json"),
                   "me@example.org", "root"], cwd=tmp_path)
    # A data root without stages 1 and 2 is refused with the stage's own error, after the configuration was read and
    # validated (its first flow's raw file is what is missing).
    assert result.returncode == 1, result.stderr
    assert "error: root/Raw Data/csap_s01e01_activation.json: raw data file missing" in result.stderr
