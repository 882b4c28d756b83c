"""The automated analysis, orchestrated: read the two CSVs, build every table, draw charts and maps, write
``Outputs/Analysis/`` and the report (spec analysis.md).

It reads only ``Outputs/csap_mes.csv``, ``Outputs/csap_ind.csv``, the configuration and the code schemes, so it
runs at the end of stage 3 and on its own (``generate_outputs.py analyse <data-root>``), also on outputs the
2019 pipeline wrote. Every file is staged and moved into place only when all were written.

    Outputs/Analysis/
      <table>.csv ...                 every table, unsuppressed (for the research team)
      charts/<chart>.png, .svg        a chart per table (themes and demographics: one per dataset)
      maps/<level>/<map>.png, .svg    participation maps
      report.html                     the shareable report (suppressed)
      manifest.json                   the files of this analysis with their SHA-256, written last (by the
                                      analysis command, with the SHA-256 of the Outputs/manifest.json of the
                                      stage-3 run whose CSVs it read)
      shareable/                      suppressed copies of the tables, charts and maps (no sample messages)
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from redss_pipeline.analysis.cells import Cell, Count, Percent, render
from redss_pipeline.analysis.charts import (
    Chart,
    bar_chart,
    bar_from_cell,
    grouped_bar_chart,
)
from redss_pipeline.analysis.coding_quality import CodingQuality, measure_for_report
from redss_pipeline.analysis.datasets import AGE, AnalysisDatasets, analysis_datasets
from redss_pipeline.analysis.definitions import Profile, codes_relevant
from redss_pipeline.analysis.engagement import (
    engagement_counts,
    new_and_returning_participants,
    repeat_participations,
)
from redss_pipeline.analysis.maps import DrawnMap, draw_map
from redss_pipeline.analysis.outputs_reader import AnalysisInputs, read_outputs
from redss_pipeline.analysis.report import (
    Figure,
    ReportSection,
    ReportSummary,
    TableSectionData,
    TableView,
    combined_cell,
    display_table,
    render_report,
)
from redss_pipeline.analysis.samples import sample_messages
from redss_pipeline.analysis.suppression import colour_counts, is_small, suppress_cell, suppress_table
from redss_pipeline.analysis.tables import Table
from redss_pipeline.analysis.themes import (
    TOTAL_RELEVANT,
    cross_tab,
    demographic_distributions,
    theme_confidence_intervals,
    theme_distributions,
)
from redss_pipeline.analysis.traffic import format_time, messages_in_no_window, traffic_analysis
from redss_pipeline.core.code_scheme import Code
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.errors import listed_with_and
from redss_pipeline.core.output_set import MANIFEST_NAME, OutputSet, finish_interrupted_switches
from redss_pipeline.core.run_manifest import RecordedRun, file_sha256
from redss_pipeline.core.workers import default_workers, ended_workers_cpu_seconds, in_order
from redss_pipeline.export.analysis_files import write_table_csv

__all__ = ["REPORT_FILE", "SHAREABLE_DIR", "AnalysisSummary", "analyse_into", "analysis_dir", "build_tables",
           "run_analysis"]

REPORT_FILE = "report.html"
SHAREABLE_DIR = "shareable"
# Datasets with more Normal codes than this show only their non-zero rows in the report.
LONG_SCHEME = 25


def analysis_dir(data_root: DataRoot) -> Path:
    """``<data-root>/Outputs/Analysis``."""
    return data_root.analysis_dir


@dataclass
class AnalysisSummary:
    """What an analysis run wrote, and how long each part took."""

    outputs: list[Path] = field(default_factory=list)
    shareable: list[Path] = field(default_factory=list)
    report: Path | None = None
    step_seconds: dict[str, float] = field(default_factory=dict)
    worker_cpu_seconds: float = 0.0  # CPU the reading and the drawings took in worker processes
    messages: int = 0
    people: int = 0


@dataclass(frozen=True)
class _Tables:
    engagement: Table
    repeat: Table
    new_returning: Table
    themes: Table
    themes_ci: Table
    demographics: Table
    cross_tabs: tuple[Table, ...]
    samples: Table
    traffic: Table

    def all(self) -> list[Table]:
        return [self.engagement, self.repeat, self.new_returning, self.themes, self.themes_ci, self.demographics,
                *self.cross_tabs, self.samples, self.traffic]


def build_tables(inputs: AnalysisInputs, *, config: PipelineConfig, datasets: AnalysisDatasets) -> _Tables:
    """Every table of analysis.md section 4 (and the new/returning and confidence-interval tables)."""
    themes = theme_distributions(inputs.individuals, datasets=datasets)
    # The participation tables need the episodes only: people projected onto them repeat few profiles.
    episodes = _themes_only(inputs.individuals, datasets)
    return _Tables(
        engagement=engagement_counts(inputs.messages, episodes, message_rows=inputs.message_rows,
                                     individual_rows=inputs.individual_rows, datasets=datasets),
        repeat=repeat_participations(episodes, datasets=datasets),
        new_returning=new_and_returning_participants(episodes, datasets=datasets),
        themes=themes,
        themes_ci=theme_confidence_intervals(themes),
        demographics=demographic_distributions(inputs.individuals, datasets=datasets),
        cross_tabs=tuple(cross_tab(inputs.individuals, a, b, datasets=datasets) for a, b in config.analysis.cross_tabs),
        samples=sample_messages(inputs.samples, datasets=datasets),
        traffic=traffic_analysis(inputs.messages, config=config, datasets=datasets, flag_columns=inputs.flag_columns),
    )


def _themes_only(individuals: Counter[Profile], datasets: AnalysisDatasets) -> Counter[Profile]:
    """The people's profiles cut to the theme datasets (the first ones), counted together."""
    count = len(datasets.themes)
    cut: Counter[Profile] = Counter()
    for profile, n in individuals.items():
        cut[Profile(profile.withdrawn, profile.codes[:count])] += n
    return cut


class _Steps:
    def __init__(self, summary: AnalysisSummary, stream: TextIO | None):
        self._summary = summary
        self._stream = stream

    def __call__(self, name: str, work: Callable[[], Any], describe: Callable[[Any], str] | None = None) -> Any:
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
        self._summary.step_seconds[name] = seconds
        if self._stream is not None:
            detail = f": {describe(result)}" if describe else ""
            print(f"  analysis: {name}{detail} ({seconds:.1f} s)", file=self._stream, flush=True)
        return result


def run_analysis(*, config: PipelineConfig, data_root: str | Path, progress: TextIO | None = sys.stderr,
                 workers: int | None = None) -> AnalysisSummary:
    """Analyses a data root's outputs and writes ``Outputs/Analysis/`` (tables, charts, maps, report) as one set,
    with ``Outputs/Analysis/manifest.json`` (``generate_outputs.py analyse``). The two CSVs are read, and the
    charts and maps drawn, by ``workers`` processes (default: :func:`~redss_pipeline.core.workers.default_workers`).
    The caller holds the data-root lock: a switch of the outputs a killed run left pending is completed first."""
    root = DataRoot(data_root)
    summary = AnalysisSummary()
    # A stage-3 run killed while switching its outputs in left CSVs of two runs: its switch is completed first,
    # as stage 3 itself would, so the analysis reads one run's files.
    for note in finish_interrupted_switches(root.outputs_dir, root.analysis_dir):
        if progress is not None:
            print(f"  {note}", file=progress, flush=True)

    # Which stage-3 run's CSVs this analyses (the data-root lock keeps them as they are until the switch): the
    # upload sends this analysis's report with those CSVs only (see export/drive_uploads.py).
    try:
        outputs_manifest: str | None = file_sha256(root.outputs_dir / MANIFEST_NAME)
    except OSError:  # no stage-3 manifest (outputs of the 2019 pipeline), or one that cannot be read
        outputs_manifest = None
    # The run the report names: the one that wrote the CSVs as they are (a CSV saved again since is not its file).
    recorded = RecordedRun.read(root.outputs_dir / MANIFEST_NAME) if outputs_manifest else None
    csvs = [root.outputs_dir / config.outputs.messages_csv, root.outputs_dir / config.outputs.individuals_csv]
    outputs_run = recorded.started if recorded is not None and recorded.wrote_as_is(csvs) else None

    def describe(files: list[dict[str, Any]]) -> dict[str, Any]:
        return {"analysis_of": [config.outputs.messages_csv, config.outputs.individuals_csv],
                "outputs_manifest_sha256": outputs_manifest,
                "messages": summary.messages, "people": summary.people,
                "suppression_k": config.analysis.suppression_k, "files": files}

    # One set: every file is staged and switched in together, with a manifest of their hashes.
    with OutputSet(root.analysis_dir, manifest=describe) as staged:
        analyse_into(staged, config=config, data_root=root, messages_csv=root.outputs_dir / config.outputs.messages_csv,
                     individuals_csv=root.outputs_dir / config.outputs.individuals_csv, progress=progress,
                     summary=summary, workers=default_workers() if workers is None else workers,
                     outputs_run=outputs_run)
    return summary


def analyse_into(staged: OutputSet, *, config: PipelineConfig, data_root: DataRoot, messages_csv: Path,
                 individuals_csv: Path, progress: TextIO | None = sys.stderr,
                 summary: AnalysisSummary | None = None,
                 coding_quality: CodingQuality | None = None, workers: int = 1,
                 outputs_run: datetime | None = None) -> AnalysisSummary:
    """Analyses the two CSVs and stages every file of ``Outputs/Analysis/`` in ``staged``: stage 3 passes its own
    output set (and its staged CSVs), so the analysis switches in with the outputs it was made from; the report
    names the stage-3 run that wrote them (``outputs_run``, when it started). The two CSVs
    are read (see :func:`~redss_pipeline.analysis.outputs_reader.read_outputs`), and the charts and maps drawn
    (see :func:`_draw_all`), by ``workers`` processes."""
    root = data_root
    summary = summary if summary is not None else AnalysisSummary()
    step = _Steps(summary, progress)
    datasets = analysis_datasets(config)
    k = config.analysis.suppression_k
    cpu_before = ended_workers_cpu_seconds()
    inputs = step(
        "read outputs", lambda: read_outputs(config, datasets, messages_csv, individuals_csv, workers=workers),
        lambda i: f"{i.message_rows:,} messages, {i.individual_rows:,} people",
    )
    summary.worker_cpu_seconds += ended_workers_cpu_seconds() - cpu_before  # the two files, read in workers
    summary.messages, summary.people = inputs.message_rows, inputs.individual_rows
    tables = step("tables", lambda: build_tables(inputs, config=config, datasets=datasets),
                  lambda t: f"{len(t.all())} tables")
    # Stage 3 passes its own coding-quality measures (its CSVs are only staged yet); the analysis run alone
    # measures them from the files, and writes them with the rest of Outputs/Analysis/.
    quality = coding_quality if coding_quality is not None else measure_for_report(config, root)
    if coding_quality is None and quality is not None and progress is not None:
        for warning in quality.round_trip.warnings:  # stage 3 reports its own with its other warnings
            print(f"  warning: {warning}", file=progress, flush=True)
    extra = _extra_sections(config, root, quality)

    def draw() -> tuple[dict[str, tuple[Chart, Chart]], dict[str, tuple[DrawnMap, DrawnMap]]]:
        chart_drawings = _chart_drawings(tables, k=k, datasets=datasets)
        map_drawings = _map_drawings(inputs, config=config, datasets=datasets)  # counts people per location
        drawn, drawing_cpu_seconds = _draw_all({**chart_drawings, **map_drawings}, workers=workers)
        summary.worker_cpu_seconds += drawing_cpu_seconds
        return {key: drawn[key] for key in chart_drawings}, {key: drawn[key] for key in map_drawings}

    charts, maps = step("charts and maps", draw, lambda drawn: f"{len(drawn[0])} charts, {len(drawn[1])} maps")
    report_html = step("report", lambda: _report(config, inputs, tables, k, charts, maps, datasets, extra,
                                                 outputs_run))

    out = analysis_dir(root)
    share = out / SHAREABLE_DIR

    def write() -> None:
        all_tables = tables.all() + [t for section in extra for t in section.tables]
        if coding_quality is None and quality is not None:
            summary.outputs.extend(quality.write_tables(staged, out))
        for table in all_tables:
            write_table_csv(staged.path_for(out / table.name), table.columns, table.text_rows())
            summary.outputs.append(out / table.name)
            if table.shareable:
                copy = suppress_table(table, k)
                write_table_csv(staged.path_for(share / table.name), copy.columns, copy.text_rows())
                summary.shareable.append(share / table.name)
        for key, (full, small) in charts.items():
            for folder, chart in ((out / "charts", full), (share / "charts", small)):
                for suffix, content in ((".png", chart.png), (".svg", chart.svg)):
                    _write(staged, folder / f"{key}{suffix}", content)
                    (summary.outputs if folder.parent == out else summary.shareable).append(folder / f"{key}{suffix}")
        for name, (full, small) in maps.items():
            level = name.split("/")[0]
            for base, drawn in ((out, full), (share, small)):
                for suffix, content in ((".png", drawn.png), (".svg", drawn.svg)):
                    target = base / "maps" / level / f"{name.split('/')[1]}{suffix}"
                    _write(staged, target, content)
                    (summary.outputs if base == out else summary.shareable).append(target)
        _write(staged, out / REPORT_FILE, report_html)
        summary.report = out / REPORT_FILE
        summary.shareable.append(out / REPORT_FILE)

    step("write", write, lambda _: f"{len(summary.outputs) + len(summary.shareable)} files for {out}")
    return summary


def _write(staged: OutputSet, target: Path, content: str | bytes) -> None:
    path = staged.path_for(target)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")


def _extra_sections(config: PipelineConfig, root: DataRoot, quality: CodingQuality | None) -> list[ReportSection]:
    """Sections other parts of the pipeline add to the report (one line each)."""
    if quality is None:
        return []
    return [ReportSection("coding-quality", "Coding quality", "coding_quality.html.j2", quality.section_context())]


# -- charts ------------------------------------------------------------------------------------------------------


def _both(table: Table, k: int, draw: Callable[[Table], Chart]) -> tuple[Chart, Chart]:
    """The chart of a table and of its shareable copy (drawn once when suppression changes nothing)."""
    full = draw(table)
    small_table = suppress_table(table, k)
    return full, (full if small_table.rows == table.rows else draw(small_table))


def _chart_drawings(tables: _Tables, *, k: int, datasets: AnalysisDatasets) -> dict[str, Drawing]:
    """The charts to draw, by file stem (see :func:`_draw_all`)."""
    charts: dict[str, Drawing] = {}

    def engagement(table: Table) -> Chart:
        rows = table.rows[:-1]
        series = [(label, [bar_from_cell("", row[table.column(column)]) for row in rows]) for label, column in (
            ("Opt-in messages", "Total Messages with Opt-Ins"), ("Relevant messages", "Total Relevant Messages"),
            ("Opt-in people", "Total Participants with Opt-Ins"), ("Relevant people", "Total Relevant Participants"))]
        return grouped_bar_chart("engagement_counts", "Messages and people per episode",
                                 [str(r[0]) for r in rows], series)

    charts["engagement_counts"] = partial(_both, tables.engagement, k, engagement)

    def repeat(table: Table) -> Chart:
        bars = [bar_from_cell(f"{row[0]} episode{'s' if row[0] != '1' else ''}", row[1], row[2]) for row in table.rows]
        return bar_chart("repeat_participations", "People by number of episodes they took part in", bars)

    charts["repeat_participations"] = partial(_both, tables.repeat, k, repeat)

    def new_returning(table: Table) -> Chart:
        series = [(label, [bar_from_cell("", row[table.column(column)]) for row in table.rows])
                  for label, column in (("New", "New Participants"), ("Returning", "Returning Participants"))]
        return grouped_bar_chart("new_and_returning_participants", "New and returning people per episode",
                                 [str(r[0]) for r in table.rows], series)

    charts["new_and_returning_participants"] = partial(_both, tables.new_returning, k, new_returning)

    def traffic(table: Table) -> Chart:
        bars = [bar_from_cell(str(row[2]), row[3], None) for row in table.rows]
        return bar_chart("traffic_analysis", "Opt-in messages per channel window", bars, xlabel="Messages")

    charts["traffic_analysis"] = partial(_both, tables.traffic, k, traffic)

    for table, names, prefix in ((tables.themes, datasets.themes, "themes"),
                                 (tables.demographics, _charted_demogs(datasets), "demographics")):
        for name in names:
            rows = _dataset_rows(table, name)

            normal = _normal_rows(table, rows, datasets, name)

            def one(t: Table, name: str = name, normal: list[int] = normal, prefix: str = prefix) -> Chart:
                bars = [bar_from_cell(str(t.rows[i][1]), t.rows[i][2], t.rows[i][3]) for i in normal]
                # The axis says what the percentages are of, so an exported chart can be cited on its own.
                return bar_chart(f"{prefix}_{name}", f"{name}: people per code", bars,
                                 xlabel=f"People (% of the people relevant to {name})")

            charts[f"{prefix}_{name}"] = partial(_both, table, k, one)
    for table in tables.cross_tabs:
        a, b = table.columns[0], table.columns[1]

        def crossed(t: Table, a: str = a, b: str = b) -> Chart:
            groups = list(dict.fromkeys(str(r[0]) for r in t.rows))
            codes_b = list(dict.fromkeys(str(r[1]) for r in t.rows))
            series = [(code, [bar_from_cell("", r[2]) for r in t.rows if r[1] == code]) for code in codes_b]
            return grouped_bar_chart(t.name.removesuffix(".csv"), f"{b} by {a}", groups, series, ylabel="People")

        charts[table.name.removesuffix(".csv")] = partial(_both, table, k, crossed)
    return charts


def _normal_rows(table: Table, rows: list[int], datasets: AnalysisDatasets, name: str) -> list[int]:
    """The rows of a dataset's block whose Theme is a Normal code of its scheme, in table order."""
    normal = {code.string_value for code in datasets[name].scheme.normal_codes}
    return [i for i in rows if table.rows[i][1] in normal]


def _control_rows(table: Table, rows: list[int], datasets: AnalysisDatasets, name: str) -> list[int]:
    """Positions (within ``rows``) of the rows of control codes (drawn muted in the report)."""
    normal = {code.string_value for code in datasets[name].scheme.normal_codes}
    return [n for n, i in enumerate(rows) if table.rows[i][1] not in normal and table.rows[i][1] != TOTAL_RELEVANT]


def _charted_demogs(datasets: AnalysisDatasets) -> list[str]:
    """Demographic datasets with a chart: all but a raw value that has a category dataset (age)."""
    categorised = {d.column for d in datasets.all if d.kind == AGE}
    return [name for name in datasets.demogs if not (datasets[name].kind != AGE and name in categorised)]


def _dataset_rows(table: Table, name: str) -> list[int]:
    """The row indices of one dataset in a theme or demographic table (its first row names it)."""
    rows: list[int] = []
    inside = False
    for i, row in enumerate(table.rows):
        if row[0]:
            inside = row[0] == name
        if inside:
            rows.append(i)
    return rows


# -- maps --------------------------------------------------------------------------------------------------------


def _by_location(individuals: Counter[Profile], level: int, themes: int
                 ) -> Counter[tuple[frozenset, tuple[frozenset, ...]]]:
    """Opt-in people by their codes at a location level and their theme codes (one pass per level)."""
    projected: Counter[tuple[frozenset, tuple[frozenset, ...]]] = Counter()
    for profile, n in individuals.items():
        if not profile.withdrawn:
            projected[(profile.codes[level], profile.codes[:themes])] += n
    return projected


def _location_counts(people: Counter[tuple[frozenset, tuple[frozenset, ...]]], theme: int | None,
                     keep: Callable[[frozenset], bool]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for (locations, themes), n in people.items():
        if theme is not None and not keep(themes[theme]):
            continue
        for code in locations:
            if code.control_code is None:
                counts[code.string_value] += n
    return dict(counts)


def _everyone(codes: frozenset) -> bool:
    return True


def _has(code: Code, codes: frozenset) -> bool:
    return code in codes


def _map_drawings(inputs: AnalysisInputs, *, config: PipelineConfig, datasets: AnalysisDatasets
                  ) -> dict[str, Drawing]:
    """The maps to draw, by ``<level>/<file stem>`` (see :func:`_draw_all`)."""
    settings = config.analysis
    maps: dict[str, Drawing] = {}
    for level in settings.map_levels:
        at = datasets.index(level)
        plans: list[tuple[str, int | None, Callable[[frozenset], bool]]] = [
            (f"{level}_total_participants", None, _everyone)]
        for name in datasets.themes:
            d = datasets.index(name)
            plans.append((f"{level}_{name}_1_total_relevant", d, codes_relevant))
            if settings.map_themes:
                for i, code in enumerate(datasets[name].scheme.normal_codes, start=2):
                    plans.append((f"{level}_{name}_{i}_{code.string_value}", d, partial(_has, code)))
        people = _by_location(inputs.individuals, at, len(datasets.themes))
        for file_stem, theme, keep in plans:
            counts = _location_counts(people, theme, keep)
            maps[f"{level}/{file_stem}"] = _MapPair(level, tuple(sorted(counts.items())), settings.suppression_k,
                                                    settings.legend_position, settings.map_dpi)
    return maps


@dataclass(frozen=True)
class _MapPair:
    """Draws the map of ``counts`` at ``level`` and its shareable copy (the same drawing when suppression changes
    nothing): its printed counts suppressed, and its colours from counts whose small values share one class
    (:func:`colour_counts`). A value: two files of the same counts (a show's relevant people and its yes/no
    question's are often the same people) are one drawing (see :func:`_draw_all`)."""

    level: str
    counts: tuple[tuple[str, int], ...]  # per location id, sorted
    k: int
    legend_position: str
    dpi: int

    def __call__(self) -> tuple[DrawnMap, DrawnMap]:
        counts = dict(self.counts)
        full = draw_map(self.level, counts, legend_position=self.legend_position, dpi=self.dpi)
        if not any(is_small(n, self.k) for n in counts.values()):
            return full, full
        shown = {location: render(suppress_cell(Count(n), self.k)) for location, n in counts.items()}
        small = draw_map(self.level, colour_counts(counts, self.k), labels=shown,
                         legend_position=self.legend_position, dpi=self.dpi)
        return full, small


Drawing = Callable[[], tuple[Any, Any]]
"""Draws a chart or map: the full drawing and the shareable one (the same object when suppression hides nothing)."""


def _draw_all(drawings: dict[str, Drawing], *, workers: int) -> tuple[dict[str, tuple[Any, Any]], float]:
    """Every drawing, by key, in the order given, and the CPU seconds worker processes spent on them. Each is a
    few hundred milliseconds of matplotlib on its own, so they are shared among ``workers`` forked processes
    (:func:`~redss_pipeline.core.workers.in_order`), each sending back PNG bytes and SVG text; the files are the
    same whatever the number of workers. Equal drawings (values such as :class:`_MapPair` that compare equal)
    are drawn once and shared by their keys."""
    distinct = list(dict.fromkeys(drawings.values()))

    @contextmanager
    def drawing() -> Iterator[Callable[[int], list[tuple[Any, Any]]]]:
        yield lambda number: [distinct[number]()]

    cpu_before = ended_workers_cpu_seconds()
    with closing(in_order(range(len(distinct)), drawing, workers=min(workers, len(distinct)))) as drawn:
        by_drawing = dict(zip(distinct, drawn))
    return {key: by_drawing[d] for key, d in drawings.items()}, ended_workers_cpu_seconds() - cpu_before


# -- report ------------------------------------------------------------------------------------------------------


def _figure(charts: dict[str, tuple[Chart, Chart]], key: str) -> Figure | None:
    if key not in charts:
        return None
    chart = charts[key][1]
    # The caption gives the title; a screen reader's user learns from the image's text where its numbers are.
    return Figure(chart.title, chart.svg, alt="Bar chart of the numbers in the table below")


def _labelled_share(exact: tuple[Cell, ...], shown: tuple[Cell, ...], engagement: Table, k: int) -> str:
    """An episode's line of the summary's coding progress, from its row of the engagement counts (``exact``) and
    the same row as the shareable table shows it (``shown``): ``1,412 of 1,518 (93.0%)``; ``<5 of <5`` and no
    percentage when a count is small; ``0 of 0`` when no message responded."""
    opt_in = engagement.column("Total Messages with Opt-Ins")
    labelled = engagement.column("Total Labelled Messages")
    responded_count, labelled_count = exact[opt_in], exact[labelled]
    assert isinstance(responded_count, Count) and isinstance(labelled_count, Count)
    share = suppress_cell(Percent(labelled_count.n, responded_count.n), k)

    def count(cell: Cell) -> str:
        return f"{cell.n:,}" if isinstance(cell, Count) else render(cell)

    return combined_cell(f"{count(shown[labelled])} of {count(shown[opt_in])}", share)


def _report(config: PipelineConfig, inputs: AnalysisInputs, tables: _Tables, k: int,
            charts: dict[str, tuple[Chart, Chart]], maps: dict[str, tuple], datasets: AnalysisDatasets,
            extra: Sequence[ReportSection], outputs_run: datetime | None) -> str:
    s = {t.name: suppress_table(t, k) for t in tables.all() if t.shareable}
    engagement = s["engagement_counts.csv"]
    progress = [(str(shown[0]), _labelled_share(exact, shown, tables.engagement, k))
                for exact, shown in zip(tables.engagement.rows[:-1], engagement.rows[:-1])]
    opt_in_people = sum(n for p, n in inputs.individuals.items() if not p.withdrawn)
    summary = ReportSummary(
        project=config.project_name,
        messages=inputs.message_rows,
        people=inputs.individual_rows,
        opt_in_people=opt_in_people,
        shows=datasets.shows,
        date_range=_project_window(config),
        coding_progress=tuple(progress),
        suppression_k=k,
        generated_from=(config.outputs.messages_csv, config.outputs.individuals_csv),
        outputs_run=f"{outputs_run.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC" if outputs_run else "",
        coding_quality=any(section.key == "coding-quality" for section in extra),
    )

    def section(key: str, table: Table, views: list[TableView], files: Sequence[str] | None = None,
                more: str = "") -> ReportSection:
        return ReportSection(key, table.title, "table_section.html.j2", TableSectionData(
            f"{table.note} {more}".strip(), table.terms, tuple(views), tuple(files or [table.name])))

    sections = [
        section("engagement", engagement, [TableView(display_table(engagement, label_columns=("Dataset",)),
                                                     _figure(charts, "engagement_counts"))]),
    ]
    repeat = s["repeat_participations.csv"]
    sections.append(section("repeat", repeat, [TableView(display_table(
        repeat, label_columns=(repeat.columns[0],), pairs=[(repeat.columns[1], repeat.columns[2])],
        headers=("Episodes", "People (% of opt-in people)")), _figure(charts, "repeat_participations"))]))
    new_returning = s["new_and_returning_participants.csv"]
    sections.append(section("new-returning", new_returning, [TableView(display_table(
        new_returning, label_columns=("Dataset",),
        pairs=[("Participants with Opt-Ins", None), ("New Participants", "New Participants %"),
               ("Returning Participants", "Returning Participants %")],
        headers=("Episode", "People", "New", "Returning")), _figure(charts, "new_and_returning_participants"))]))

    themes = s["theme_distributions.csv"]
    narrow = [b for b in datasets.breakdowns if len(datasets[b].scheme.normal_codes) <= 3]
    pairs: list[tuple[str, str | None]] = [("Total Participants", "Total Participants %")]
    headers = ["Theme", "People"]
    for b in narrow:
        for code in datasets[b].scheme.normal_codes:
            pairs.append((f"{b}:{code.string_value}", f"{b}:{code.string_value} %"))
            headers.append(f"{b}: {code.string_value}")
    theme_views = []
    for name in datasets.themes:
        rows = _dataset_rows(themes, name)
        muted = _control_rows(themes, rows, datasets, name)
        theme_views.append(TableView(
            display_table(themes, caption=name, rows=rows, label_columns=("Theme",), pairs=pairs, headers=headers,
                          muted_rows=muted),
            _figure(charts, f"themes_{name}")))
    wide = [b for b in datasets.breakdowns if b not in narrow]
    shown_here = (f"Here each theme is broken down by the answers to {listed_with_and(narrow)}" if narrow
                  else "Here the themes are not broken down")
    sections.append(section("themes", themes, theme_views, ["theme_distributions.csv", "theme_distributions_ci.csv"],
                            more=f"{shown_here}; the full table also breaks them down by "
                            f"{listed_with_and(wide) + ' and by ' if wide else ''}the people who gave no answer "
                            "(NA, NC, ...)."))

    demographics = s["demographic_distributions.csv"]
    demog_views = []
    for name in datasets.demogs:
        rows = _dataset_rows(demographics, name)
        caption = name
        if len(datasets[name].scheme.normal_codes) > LONG_SCHEME:
            every_row = rows
            rows = [i for i in rows if not (isinstance(tables.demographics.rows[i][2], Count)
                                            and tables.demographics.rows[i][2].n == 0)]  # type: ignore[union-attr]
            if len(rows) < len(every_row):
                caption += " (codes of 0 people not shown)"
        muted = _control_rows(demographics, rows, datasets, name)
        demog_views.append(TableView(
            display_table(demographics, caption=caption, rows=rows, label_columns=("Theme",),
                          pairs=[("Total Participants", "Total Participants %")], headers=("Code", "People"),
                          muted_rows=muted),
            _figure(charts, f"demographics_{name}")))
    sections.append(section("demographics", demographics, demog_views))

    for table in tables.cross_tabs:
        shown = s[table.name]
        sections.append(section(table.name.removesuffix(".csv"), shown, [TableView(display_table(
            shown, label_columns=shown.columns[:2], pairs=[(shown.columns[2], shown.columns[3])],
            headers=(*shown.columns[:2], "People (%)")), _figure(charts, table.name.removesuffix(".csv")))]))
    traffic = s["traffic_analysis.csv"]
    outside, opt_in_messages = messages_in_no_window(inputs.messages, config=config, flag_columns=inputs.flag_columns)
    if outside:  # suppressed when small, as the table's counts are (its total is shown, as the tables' totals are)
        outside_count = render(suppress_cell(Count(outside), k))
        if not is_small(outside, k):
            outside_count += f" ({Percent(outside, opt_in_messages)}%)"
        outside_text = (f"{outside_count} of the {opt_in_messages:,} opt-in messages were sent in no channel's window "
                        f"(non_logical_time in {config.outputs.messages_csv}): no row counts them.")
    else:
        outside_text = "Every opt-in message was sent in a channel's window."
    sections.append(section("traffic", traffic, more=(
        "A row runs from the start of its first window to the end of its last: a channel may have several windows "
        f"in a week, with other channels' windows between them. {outside_text}"), views=[TableView(display_table(
        traffic, label_columns=("Label", "Start Date", "End Date"),
        pairs=[("Messages with Opt-Ins", None), ("Relevant Messages", "Relevant Messages (%)")],
        headers=("Window", "From", "Until", "Opt-in messages", "Relevant messages")),
        _figure(charts, "traffic_analysis"))]))

    figures = []
    for name, (_, small) in maps.items():
        level, stem = name.split("/")
        if stem.endswith("_total_participants") or (level == "region" and stem.endswith("_1_total_relevant")):
            what = "all opt-in people" if stem.endswith("_total_participants") else \
                f"people relevant to {stem.removeprefix(level + '_').removesuffix('_1_total_relevant')}"
            place = level.replace("_", " ")
            figures.append(Figure(f"{place}: {what}", small.svg, alt=(
                f"Map of Somalia by {place}, each {place} shaded by its number of {what.removeprefix('all ')} and "
                "labelled with it")))
    if figures:
        sections.append(ReportSection("maps", "Where people live", "maps_section.html.j2", _MapsData(
            note="Opt-in people per location they gave. People whose location is not coded (NA, NC, NR, ...) are on "
            f"no map. Colours group the counts into up to five classes (natural breaks); counts below {k} share one "
            "class, so a colour does not tell a count its label hides.",
            terms=("opt-in", "relevant"),
            figures=tuple(figures),
            credit="Boundaries: OCHA Somalia administrative boundaries (COD-AB), as shipped by Africa's Voices "
            "Foundation's CoreDataModules. One map per theme and location level is in maps/.",
        )))
    sections.extend(extra)
    sections.append(ReportSection("definitions", "How these numbers are defined", "definitions_section.html.j2"))
    return render_report(summary=summary, sections=sections, title=f"{config.project_name}: analysis report")


def _project_window(config: PipelineConfig) -> str:
    """``2018-12-02 00:00 to 2018-12-31 00:00 (UTC+03:00)``: the window as configured, with its UTC offset (a
    date alone read as a whole day, though the window may end at its first minute)."""
    start, end = format_time(config.project_start), format_time(config.project_end)
    start_offset, end_offset = start[19:], end[19:]  # isoformat's "+03:00" (configured times carry an offset)

    def moment(text: str) -> str:
        return text[:16].replace("T", " ")

    if start_offset == end_offset:
        return f"{moment(start)} to {moment(end)} (UTC{start_offset})"
    return f"{moment(start)} (UTC{start_offset}) to {moment(end)} (UTC{end_offset})"


@dataclass(frozen=True)
class _MapsData:
    note: str
    terms: tuple[str, ...]
    figures: tuple[Figure, ...]
    credit: str

