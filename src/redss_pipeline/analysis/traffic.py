"""Traffic per channel window (spec analysis.md 4.7): opt-in and relevant messages per show and channel.

The CSVs hold no send time, but stage 3 set each message's channel and week flags from the configured windows,
so a row of the table counts the opt-in messages whose flags are set: for each week W and each channel C with a
window starting inside W's range, the messages with both W and C true (label ``<show> <C>``); then one row per
channel over all its windows.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from redss_pipeline.analysis.cells import Count, Percent
from redss_pipeline.analysis.datasets import AnalysisDatasets
from redss_pipeline.analysis.definitions import Profile, relevant_any
from redss_pipeline.analysis.tables import Table
from redss_pipeline.core.config import PipelineConfig, TimeRange

__all__ = ["format_time", "messages_in_no_window", "traffic_analysis"]

WEEK_PREFIX = "radio_participation_"


def format_time(moment: datetime) -> str:
    """``2018-12-02T19:25:19+03:00``: seconds always written, the configured UTC offset kept."""
    return moment.isoformat(timespec="seconds")


def traffic_analysis(messages: Counter[Profile], *, config: PipelineConfig, datasets: AnalysisDatasets,
                     flag_columns: tuple[str, ...]) -> Table:
    """``traffic_analysis.csv``: 12 + 3 rows for REDSS/CSAP."""
    shows = [datasets.index(name) for name in datasets.shows]
    flag_at = {name: i for i, name in enumerate(flag_columns)}

    def counted(required: tuple[str, ...]) -> tuple[int, int]:
        positions = [flag_at[name] for name in required]
        opt_in = relevant_messages = 0
        for profile, n in messages.items():
            if profile.withdrawn or not all(profile.flags[p] for p in positions):
                continue
            opt_in += n
            if relevant_any(profile, shows):
                relevant_messages += n
        return opt_in, relevant_messages

    def row(windows: list[TimeRange], label: str, required: tuple[str, ...]) -> tuple:
        opt_in, relevant_messages = counted(required)
        return (format_time(min(w.start for w in windows)), format_time(max(w.end for w in windows)), label,
                Count(opt_in), Count(relevant_messages), Percent(relevant_messages, opt_in))

    rows = []
    for week, week_ranges in config.weeks.items():
        for channel, windows in config.channels.items():
            inside = [w for w in windows if any(r.start <= w.start < r.end for r in week_ranges)]
            if inside:
                rows.append(row(inside, f"{week.removeprefix(WEEK_PREFIX)} {channel}", (week, channel)))
    for channel, windows in config.channels.items():
        rows.append(row(list(windows), channel, (channel,)))
    return Table(
        "traffic_analysis.csv",
        ("Start Date", "End Date", "Label", "Messages with Opt-Ins", "Relevant Messages", "Relevant Messages (%)"),
        tuple(rows),
        title="Traffic per channel",
        note="Opt-in messages sent in the windows of each channel (SMS advert, radio promotion, radio show), per "
        "episode week and over the series, and how many were relevant to an episode.",
        terms=("opt-in", "relevant"),
        label_columns=3,
    )


def messages_in_no_window(messages: Counter[Profile], *, config: PipelineConfig, flag_columns: tuple[str, ...]
                          ) -> tuple[int, int]:
    """The opt-in messages sent in no channel's window (stage 3 set their ``non_logical_time``), which no row of
    the traffic table counts, and all opt-in messages."""
    channels = [i for i, name in enumerate(flag_columns) if name in config.channels]
    outside = everyone = 0
    for profile, n in messages.items():
        if not profile.withdrawn:
            everyone += n
            if not any(profile.flags[i] for i in channels):
                outside += n
    return outside, everyone
