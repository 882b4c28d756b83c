"""Shared fixtures: the project root, the shipped configuration, a fixed run clock, the native runtime."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from redss_pipeline.core.config import PipelineConfig, load_config
from redss_pipeline.core.run_context import RunContext

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def native_runtime(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Numbered run scripts pick Docker whenever a Docker engine answers; tests mean the native runtime unless
    they are marked ``docker`` (those run the real engine and choose the runtime themselves)."""
    if request.node.get_closest_marker("docker") is None:
        monkeypatch.setenv("PIPELINE_RUNTIME", "native")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def config() -> PipelineConfig:
    """The shipped REDSS/CSAP configuration."""
    return load_config(PROJECT_ROOT / "pipeline_config.json")


@pytest.fixture
def run() -> RunContext:
    """A run with a fixed clock, so outputs that carry the run time are reproducible."""
    return RunContext("tester@example.org", datetime(2019, 1, 20, 10, 0, tzinfo=timezone.utc))
