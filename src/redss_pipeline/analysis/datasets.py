"""The datasets of the analysis and how each is read from a row of ``csap_mes.csv`` / ``csap_ind.csv``.

A dataset is one question whose answer is a set of codes of one scheme (spec analysis.md section 1):

| kind        | datasets                                       | cells read                                         |
| ----------- | ---------------------------------------------- | -------------------------------------------------- |
| ``matrix``  | the shows ``s01e01`` .. ``s01e04``             | ``<analysis_prefix><StringValue>`` holding ``1``   |
| ``single``  | binary questions, surveys, ``operator``        | the StringValue in the column of the dataset       |
| ``age``     | ``age_category``                               | the integer in ``age`` put in its category         |

The lists of analysis.md section 2 are built here from the configuration, never typed elsewhere: SHOWS (the
episodes), THEMES (each show followed by its binary question), DEMOGS (the survey analysis keys in configuration
order, ``age_category`` right after ``age``, the operator last) and the configured BREAKDOWNS.
"""

from __future__ import annotations

from dataclasses import dataclass

from redss_pipeline.core.code_scheme import CONTROL, NORMAL, Code, CodeScheme
from redss_pipeline.core.config import AgeCategory, PipelineConfig
from redss_pipeline.generate.analysis_columns import matrix_keys

__all__ = ["AGE", "MATRIX", "SINGLE", "AnalysisDatasets", "Dataset", "age_category_scheme", "analysis_datasets"]

MATRIX = "matrix"
SINGLE = "single"
AGE = "age"


@dataclass(frozen=True)
class Dataset:
    """One dataset of the analysis.

    ``column`` is the CSV column of a single-valued dataset (``age`` for age_category); ``columns`` maps each
    matrix column of a show to its code. ``raw_field`` is the column of the message text (shows and their
    binary questions only).
    """

    name: str
    scheme: CodeScheme
    kind: str
    column: str | None = None
    columns: tuple[tuple[str, Code], ...] = ()
    raw_field: str | None = None
    age_categories: tuple[AgeCategory, ...] = ()

    @property
    def codes(self) -> tuple[Code, ...]:
        """The scheme's codes in scheme order."""
        return self.scheme.codes


@dataclass(frozen=True)
class AnalysisDatasets:
    """Every dataset read from the CSVs, in reading order, and the named lists of analysis.md section 2.

    ``index`` gives a dataset's position in a row profile's code tuple.
    """

    all: tuple[Dataset, ...]
    shows: tuple[str, ...]
    themes: tuple[str, ...]
    demogs: tuple[str, ...]
    breakdowns: tuple[str, ...]

    def __getitem__(self, name: str) -> Dataset:
        return self.all[self.index(name)]

    def index(self, name: str) -> int:
        for i, dataset in enumerate(self.all):
            if dataset.name == name:
                return i
        raise KeyError(name)


def age_category_scheme(categories: tuple[AgeCategory, ...], age_scheme: CodeScheme) -> CodeScheme:
    """The scheme of ``age_category``: one Normal code per category in configuration order, then the Age
    scheme's control codes in that scheme's order (analysis.md section 1)."""
    codes = [
        Code(code_id=f"age_category-{c.name}", code_type=NORMAL, control_code=None, display_text=c.name,
             numeric_value=i, string_value=c.name, visible_in_coda=True)
        for i, c in enumerate(categories)
    ]
    codes += [code for code in age_scheme.codes if code.code_type == CONTROL]
    return CodeScheme(scheme_id="age_category", name="Age Category", version="1", codes=tuple(codes))


def analysis_datasets(config: PipelineConfig) -> AnalysisDatasets:
    """The datasets of the configured series."""
    shows: list[Dataset] = []
    themes: list[Dataset] = []
    for plan in config.rqa_plans:
        matrix = tuple(zip(matrix_keys(plan), plan.scheme.codes))  # the columns stage 3 writes, by code
        show = Dataset(plan.name, plan.scheme, MATRIX, columns=matrix, raw_field=plan.raw_field)
        shows.append(show)
        themes.append(show)
        if plan.binary is not None:
            themes.append(Dataset(plan.binary.analysis_key.removeprefix("rqa_"), plan.binary.scheme, SINGLE,
                                  column=plan.binary.analysis_key, raw_field=plan.raw_field))
    demogs: list[Dataset] = []
    for survey in config.survey_plans:
        if any(d.name == survey.analysis_key for d in demogs):
            continue
        demogs.append(Dataset(survey.analysis_key, survey.scheme, SINGLE, column=survey.analysis_key))
        if survey.analysis_key == "age":
            scheme = age_category_scheme(config.analysis.age_categories, survey.scheme)
            demogs.append(Dataset("age_category", scheme, AGE, column=survey.analysis_key,
                                  age_categories=config.analysis.age_categories))
    demogs.append(Dataset(config.operator.analysis_key, config.operator.scheme, SINGLE,
                          column=config.operator.analysis_key))
    return AnalysisDatasets(
        all=tuple(themes + demogs),
        shows=tuple(d.name for d in shows),
        themes=tuple(d.name for d in themes),
        demogs=tuple(d.name for d in demogs),
        breakdowns=tuple(config.analysis.breakdowns),
    )
