"""Reading ``csap_mes.csv`` and ``csap_ind.csv`` for the analysis, in one streaming pass each.

Each row becomes a :class:`~redss_pipeline.analysis.definitions.Profile` (withdrawn or not, the codes under
every dataset, the channel and week flags of a message). Rows repeat a small number of profiles, so the reader
keeps a ``Counter`` of profiles rather than the rows, and turns each dataset's cells into a code set once per
distinct combination of cells. The message texts are kept only for the sample of each code (analysis.md 4.6),
chosen while reading by the smallest SHA-256 keys, so memory does not grow with the number of messages.

Input errors (analysis.md section 1) stop the analysis with one line naming the file, the row and the column:
a ``consent_withdrawn`` other than ``true``/``false``, a matrix cell other than ``0``/``1`` in an opt-in row, a
value that is not a StringValue of the dataset's scheme, an age outside every age category, a missing column.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from redss_pipeline.analysis.datasets import AGE, MATRIX, AnalysisDatasets, Dataset
from redss_pipeline.analysis.definitions import CodeSet, Profile
from redss_pipeline.core.code_scheme import NA
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.errors import PipelineError
from redss_pipeline.core.workers import in_order
from redss_pipeline.deidentify.uuid_table import shown_in_message

__all__ = [
    "AnalysisInputError",
    "AnalysisInputs",
    "LONGEST_CELL",
    "SampleCandidate",
    "read_csv_profiles",
    "read_outputs",
]

CONSENT_COLUMN = "consent_withdrawn"
UID_COLUMN = "uid"


class AnalysisInputError(PipelineError):
    """An analysis CSV (csap_mes.csv or csap_ind.csv) cannot be read as stage 3 writes it."""


@dataclass(frozen=True, order=True)
class SampleCandidate:
    """A message that may be sampled for a code: its sort key, row number (1 = first row) and text."""

    key: str
    row: int
    text: str


@dataclass
class AnalysisInputs:
    """What the analysis needs from the two CSVs."""

    messages: Counter[Profile]
    individuals: Counter[Profile]
    message_rows: int
    individual_rows: int
    flag_columns: tuple[str, ...]
    samples: dict[tuple[str, str], list[SampleCandidate]] = field(default_factory=dict)


LONGEST_CELL = 2**31 - 1  # characters in one CSV cell (see read_csv_profiles)


def read_outputs(config: PipelineConfig, datasets: AnalysisDatasets, messages_csv: Path,
                 individuals_csv: Path, *, workers: int = 1) -> AnalysisInputs:
    """Reads both CSVs; the messages with their flags and the sample candidates, the individuals' codes.

    With ``workers`` > 1 the two files are read at once, each in a worker process
    (:func:`~redss_pipeline.core.workers.in_order`), which sends back what it counted: one entry per distinct
    profile (few for the messages, whose rows repeat; up to one per person for the individuals). The result is
    the same either way, and so is the error of a bad file: that of the messages file first."""
    flag_columns = (*config.channels, *config.weeks)

    def read_messages() -> tuple[Counter[Profile], int, dict[tuple[str, str], list[SampleCandidate]]]:
        samples = _SampleKeeper(config.analysis.sample_per_code, config.analysis.sample_seed, datasets)
        # Messages are read for the episodes and their questions only (the first datasets): their rows then
        # repeat few profiles, and each distinct row is decoded once.
        counts, rows = read_csv_profiles(messages_csv, datasets, flag_columns=flag_columns,
                                         on_row=samples.offer, read=len(datasets.themes), repeats=True)
        return counts, rows, samples.result()

    def read_individuals() -> tuple[Counter[Profile], int, dict[tuple[str, str], list[SampleCandidate]]]:
        counts, rows = read_csv_profiles(individuals_csv, datasets)
        return counts, rows, {}

    readers = (read_messages, read_individuals)

    @contextmanager
    def reading() -> Iterator[Callable[[int], list[Any]]]:
        yield lambda number: [readers[number]()]

    with closing(in_order(range(len(readers)), reading, workers=min(workers, len(readers)))) as read:
        (messages, message_rows, samples), (individuals, individual_rows, _) = read
    return AnalysisInputs(messages, individuals, message_rows, individual_rows, flag_columns, samples)


def read_csv_profiles(
    path: Path,
    datasets: AnalysisDatasets,
    *,
    flag_columns: tuple[str, ...] = (),
    on_row: Callable[[int, Profile, list[str], dict[str, int]], None] | None = None,
    read: int | None = None,
    repeats: bool = False,
) -> tuple[Counter[Profile], int]:
    """Counts the profiles of a CSV's rows; ``on_row(row_number, profile, cells, header_index)`` sees each
    opt-in row (for the samples). Returns the counter and the number of rows.

    ``read`` limits the codes read to the first datasets (all by default). ``repeats`` says rows repeat their
    cells (messages): each distinct combination of the cells read is then decoded once."""
    counts: Counter[Profile] = Counter()
    rows = 0
    try:
        handle = open(path, encoding="utf-8", newline="")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        raise AnalysisInputError("file not found: run stage 3 (3_generate_outputs.sh) on this data root first",
                                 path=path) from None
    except OSError as error:
        raise AnalysisInputError(f"cannot read: {error.strerror}", path=path) from None
    # The csv module refuses a cell longer than its field size limit (128 KiB by default), a setting of the
    # module for the whole process. A cell of csap_ind.csv holds all of one person's answers to a question
    # joined, so a person with thousands of messages writes a longer one: the limit is raised (never lowered)
    # to the largest a C long holds everywhere.
    if csv.field_size_limit() < LONGEST_CELL:
        csv.field_size_limit(LONGEST_CELL)
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise AnalysisInputError("the file is empty (no header row)", path=path) from None
        index = {name: i for i, name in enumerate(header)}
        chosen = datasets.all[:read]
        parse = _RowParser(path, index, chosen, flag_columns)
        for dataset in chosen:
            if dataset.raw_field:
                parse.column(dataset.raw_field)
        withdrawn_profile = Profile(True, tuple(CodeSet() for _ in chosen), ())
        consent_at = parse.column(CONSENT_COLUMN)
        key_of = itemgetter(consent_at, *parse.positions) if repeats else None
        seen: dict[tuple[str, ...], Profile] = {}
        try:
            width = len(header)
            for rows, cells in enumerate(reader, start=1):
                if len(cells) != width:
                    raise AnalysisInputError(f"has {len(cells)} cells, the header has {width}", path=path,
                                             record=f"row {rows}")
                if key_of is not None:
                    key = key_of(cells)
                    profile = seen.get(key)
                    if profile is None:
                        profile = seen[key] = _profile(parse, rows, cells, consent_at, withdrawn_profile)
                else:
                    profile = _profile(parse, rows, cells, consent_at, withdrawn_profile)
                counts[profile] += 1
                if on_row is not None and not profile.withdrawn:
                    on_row(rows, profile, cells, index)
        except UnicodeDecodeError as error:
            raise AnalysisInputError(f"not UTF-8 text ({error.reason})", path=path) from None
        except csv.Error as error:
            raise AnalysisInputError(f"not a well-formed CSV file ({error})", path=path,
                                     record=f"line {reader.line_num}") from None
    return counts, rows


def _profile(parse: _RowParser, row: int, cells: list[str], consent_at: int, withdrawn: Profile) -> Profile:
    consent = cells[consent_at]
    if consent == "true":
        return withdrawn
    if consent != "false":
        raise parse.error(row, cells, CONSENT_COLUMN, f"expected true or false, got {shown_in_message(consent)}")
    return parse(row, cells)


class _RowParser:
    """Turns the cells of an opt-in row into a Profile, each dataset's cells decoded once per distinct value."""

    def __init__(self, path: Path, index: dict[str, int], datasets: tuple[Dataset, ...],
                 flag_columns: tuple[str, ...]):
        self._path = path
        self._index = index
        self.positions: list[int] = []  # every column the profile is read from
        self._readers = [self._reader_for(d) for d in datasets]
        self.positions += [self.column(c) for c in flag_columns]
        self._flags = itemgetter(*[self.column(c) for c in flag_columns]) if flag_columns else None
        self._flag_values: dict[tuple[str, ...], tuple[bool, ...]] = {}
        self._flag_columns = flag_columns
        self._uid_at = index.get(UID_COLUMN)

    def column(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise AnalysisInputError(f"column {name!r} is missing (is this an output of this configuration?)",
                                     path=self._path) from None

    def error(self, row: int, cells: list[str], column: str, message: str) -> AnalysisInputError:
        uid = f" (uid {shown_in_message(cells[self._uid_at])})" if self._uid_at is not None else ""
        return AnalysisInputError(message, path=self._path, record=f"row {row}{uid}", field=column)

    def __call__(self, row: int, cells: list[str]) -> Profile:
        codes = []
        for read in self._readers:
            codes.append(read(row, cells))
        flags: tuple[bool, ...] = ()
        if self._flags is not None:
            raw = self._flags(cells)
            if not isinstance(raw, tuple):
                raw = (raw,)
            known = self._flag_values.get(raw)
            flags = known if known is not None else self._decode_flags(row, cells, raw)
        return Profile(False, tuple(codes), flags)

    def _decode_flags(self, row: int, cells: list[str], raw: tuple[str, ...]) -> tuple[bool, ...]:
        for column, value in zip(self._flag_columns, raw):
            if value not in ("true", "false"):
                raise self.error(row, cells, column, f"expected true or false, got {shown_in_message(value)}")
        flags = tuple(value == "true" for value in raw)
        self._flag_values[raw] = flags
        return flags

    def _reader_for(self, dataset: Dataset) -> Callable[[int, list[str]], CodeSet]:
        na = dataset.scheme.control(NA)
        empty = CodeSet((na,)) if na is not None else CodeSet()
        if dataset.kind == MATRIX:
            return self._matrix_reader(dataset, empty)
        at = self.column(dataset.column or dataset.name)
        self.positions.append(at)
        memo: dict[str, CodeSet] = {"": empty}
        if dataset.kind == AGE:
            decode = self._age_decoder(dataset)
        else:
            by_value = {code.string_value: code for code in dataset.scheme.codes}

            def decode(value: str) -> CodeSet | None:
                code = by_value.get(value)
                return None if code is None else CodeSet((code,))

        def read(row: int, cells: list[str]) -> CodeSet:
            value = cells[at]
            codes = memo.get(value)
            if codes is None:
                codes = decode(value)
                if codes is None:
                    raise self.error(row, cells, dataset.column or dataset.name,
                                     f"{shown_in_message(value)} is not a code of scheme {dataset.scheme.name!r}")
                memo[value] = codes
            return codes

        return read

    def _age_decoder(self, dataset: Dataset) -> Callable[[str], CodeSet | None]:
        controls = {code.string_value: code for code in dataset.scheme.codes if code.control_code is not None}
        categories = [code for code in dataset.scheme.codes if code.control_code is None]
        bounds = [(c.min, c.max, code) for c, code in zip(dataset.age_categories, categories)]

        def decode(value: str) -> CodeSet | None:
            if value in controls:
                return CodeSet((controls[value],))
            try:
                age = int(value)
            except ValueError:
                return None
            for low, high, code in bounds:
                if low <= age <= high:
                    return CodeSet((code,))
            return None

        return decode

    def _matrix_reader(self, dataset: Dataset, empty: CodeSet) -> Callable[[int, list[str]], CodeSet]:
        positions = [self.column(column) for column, _ in dataset.columns]
        self.positions += positions
        codes = [code for _, code in dataset.columns]
        cells_of = itemgetter(*positions)
        memo: dict[tuple[str, ...], CodeSet] = {}

        def read(row: int, cells: list[str]) -> CodeSet:
            key = cells_of(cells)
            found = memo.get(key)
            if found is None:
                chosen = []
                for (column, _), code, value in zip(dataset.columns, codes, key):
                    if value == "1":
                        chosen.append(code)
                    elif value != "0":
                        raise self.error(row, cells, column, f"expected 0 or 1, got {shown_in_message(value)}")
                found = CodeSet(chosen) if chosen else empty
                memo[key] = found
            return found

        return read


class _SampleKeeper:
    """Keeps, per (theme dataset, code), the ``per_code`` labelled messages with the smallest sample keys."""

    def __init__(self, per_code: int, seed: int, datasets: AnalysisDatasets):
        self._per_code = per_code
        self._seed = seed
        self._themes = [(datasets.index(name), datasets[name]) for name in datasets.themes]
        self._heaps: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
        self._candidates: dict[Profile, list[tuple[tuple[str, str], str, str]]] = {}

    def _candidacies(self, profile: Profile) -> list[tuple[tuple[str, str], str, str]]:
        """(dataset, code) keys a message of this profile is a candidate for, with the key's text prefix and
        the column of its text; worked out once per distinct profile."""
        found = []
        for i, dataset in self._themes:
            codes = profile.codes[i]
            if codes.labelled:
                for code in sorted(codes, key=lambda c: c.string_value):
                    found.append(((dataset.name, code.string_value),
                                  f"{self._seed}|{dataset.name}|{code.string_value}|", dataset.raw_field or ""))
        return found

    def offer(self, row: int, profile: Profile, cells: list[str], index: dict[str, int]) -> None:
        if self._per_code == 0:
            return
        candidacies = self._candidates.get(profile)
        if candidacies is None:
            candidacies = self._candidates[profile] = self._candidacies(profile)
        for key, prefix, text_column in candidacies:
            # The sample key (analysis.md 4.6): the SHA-256 of "<seed>|<D>|<c>|<r>", compared as a number (the
            # order of its hex text).
            digest = hashlib.sha256(f"{prefix}{row}".encode()).digest()
            # A max-heap of the per_code smallest keys: store the negated key; the text is read only if kept.
            negated = -int.from_bytes(digest, "big")
            heap = self._heaps.setdefault(key, [])
            if len(heap) < self._per_code:
                heapq.heappush(heap, (negated, row, cells[index[text_column]] if text_column else ""))
            elif negated > heap[0][0]:
                heapq.heapreplace(heap, (negated, row, cells[index[text_column]] if text_column else ""))

    def result(self) -> dict[tuple[str, str], list[SampleCandidate]]:
        out = {}
        for key, heap in self._heaps.items():
            chosen = sorted((row, text, -negated) for negated, row, text in heap)
            out[key] = [SampleCandidate(f"{value:064x}", row, text) for row, text, value in chosen]
        return out
