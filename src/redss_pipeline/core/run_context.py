"""Who is running the pipeline and when: read once at the edge, passed to every step.

No step reads the clock itself (spec README decision 8): the entry point builds one :class:`RunContext` from
the ``<user>`` argument and the current time, and golden tests build one with a fixed time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from redss_pipeline.core.records import Step

__all__ = ["RunContext"]


@dataclass(frozen=True)
class RunContext:
    """The ``<user>`` of the run and the moment it started (timezone-aware)."""

    user: str
    started_at: datetime

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None:
            raise ValueError("started_at must be timezone-aware")

    @classmethod
    def now(cls, user: str) -> "RunContext":
        """The run context of a real run (the only place the clock is read)."""
        return cls(user, datetime.now(timezone.utc))

    def step(self, name: str) -> Step:
        """The shared audit metadata of one step of this run, e.g. ``run.step("generate/noise")``."""
        return Step(self.user, name, self.started_at.timestamp())

    @property
    def label_time(self) -> str:
        """``DateTimeUTC`` of the labels this run creates: UTC, Python isoformat with microseconds."""
        return self.started_at.astimezone(timezone.utc).isoformat(timespec="microseconds")
