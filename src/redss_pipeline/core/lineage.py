"""Which record keys an output column is derived from, back to the raw Rapid Pro answer.

The audit trail keeps the history of every key of every message record; this module adds the map between keys,
read from the configuration, so ``generate_outputs.py explain`` can walk from an output column to the raw key it
came from (e.g. ``gender`` <- ``gender_coded`` <- ``gender_raw`` <- ``Gender (Value) - csap_demog``) and print
the history of each. A show's matrix column is no record key: it is rendered from the show's codes
(:mod:`redss_pipeline.generate.analysis_columns`), and :func:`matrix_column` says from which list and code.
"""

from __future__ import annotations

from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.fetch.rapid_pro_keys import PHONE_ID_KEY, raw_key
from redss_pipeline.generate.analysis_columns import CONSENT_WITHDRAWN_KEY, ShowCodes
from redss_pipeline.generate.corrections import MESSAGE_KEY, SHOW_ID_KEY

__all__ = ["source_keys", "set_from_any", "matrix_column"]


def matrix_column(config: PipelineConfig, column: str) -> tuple[str, str] | None:
    """For a show's matrix column, the key of the show's codes it is rendered from and its code's StringValue
    (``rqa_s01e01_land`` -> ``("rqa_s01e01_codes", "land")``); None for any other column."""
    for plan in config.rqa_plans:
        show = ShowCodes(plan)
        if column in show.columns:
            return show.key, show.columns[column]
    return None


def source_keys(config: PipelineConfig, column: str) -> list[str]:
    """``column`` followed by the keys it was derived from, nearest first (just ``[column]`` when the column
    is not derived from another key)."""
    chain = [column]
    location_fields = [p.coded_field for p in config.survey_plans if p.location_level]
    for survey in config.survey_plans:
        value_key = raw_key(survey.result_key, "Value", survey.flow)
        # A location level is reconciled from the codes of all five levels (spec pipeline.md 7.6.4).
        coded = [survey.coded_field] + (location_fields if survey.location_level else [])
        if column == survey.analysis_key:
            return _unique([column, *coded, survey.raw_field, value_key])
        if column == survey.coded_field:
            return _unique([*coded, survey.raw_field, value_key])
        if column == survey.raw_field:
            return [column, value_key]
    show_keys = [MESSAGE_KEY, SHOW_ID_KEY] + [raw_key(p.result_key, "Value", p.flow) for p in config.rqa_plans]
    # A show's own fields first: its yes/no question's column (rqa_s01e02_integrate_return) starts with the show's
    # prefix too, but comes from the question's coded field, not from the show's reasons.
    for plan in config.rqa_plans:
        if plan.binary is not None and column in (plan.binary.analysis_key, plan.binary.coded_field):
            return _unique(chain + [plan.binary.coded_field, plan.raw_field] + show_keys)
        if column in (plan.raw_field, plan.coded_field, plan.id_field):  # the message id is made from the text
            return _unique(chain + [plan.raw_field] + show_keys)
        if column == plan.run_id_field:
            return _unique(chain + [raw_key(plan.result_key, "Run ID", plan.flow)])
    matrix = matrix_column(config, column)
    if matrix is not None:
        chain.append(matrix[0])
    for plan in config.rqa_plans:
        if column.startswith(plan.analysis_prefix):
            return _unique(chain + [plan.coded_field, plan.raw_field] + show_keys)
    if column == config.operator.analysis_key:
        return [column, config.operator.coded_field, "uid", PHONE_ID_KEY]
    if column == "uid":
        return [column, PHONE_ID_KEY]
    if column in config.channels or column in config.weeks or column == "non_logical_time":
        time_keys = [raw_key(p.result_key, "Time", p.flow) for p in config.rqa_plans]
        return _unique([column, config.message_time_field, SHOW_ID_KEY] + time_keys)
    return chain


def set_from_any(config: PipelineConfig, column: str) -> list[str]:
    """The keys any one of which can set ``column`` on its own (not a chain): ``consent_withdrawn`` is ``"true"``
    when a survey's coded field, a show's codes or a show's yes/no question holds STOP (pipeline.md 7.7.5); empty
    for any other column."""
    if column != CONSENT_WITHDRAWN_KEY:
        return []
    return _unique([*(p.coded_field for p in config.survey_plans), *(p.codes_key for p in config.rqa_plans),
                    *(p.binary.coded_field for p in config.rqa_plans if p.binary is not None)])


def _unique(keys: list[str]) -> list[str]:
    return list(dict.fromkeys(keys))
