"""Combining show messages with their senders' survey answers (spec pipeline.md 7.2).

Stage 3 works on one record per show message. A respondent's demographics and evaluation answers live in
separate survey files (one record per respondent), so each show message gets its sender's survey records
attached: every survey key becomes readable through the message record, and all of one respondent's messages
share the same survey record object (written once in the audit trail).

Which flows are shows and which are surveys is configuration: the shows are the flows of the RQA coding
plans, in plan order; the surveys are the other configured flows, in the order they are configured. The
orchestrator loads the raw files in the orders :func:`show_flows` and :func:`survey_flows` give.

Respondents who answered a survey but sent no show message are left out here, and so from every output
(pipeline.md 7.2, kept from 2019).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.errors import RawDataError, json_type
from redss_pipeline.core.records import Record, Step
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.fetch.rapid_pro_keys import PHONE_ID_KEY

__all__ = [
    "show_flows", "survey_flows", "combine_shows_and_surveys", "respondent_of_show_record", "respondent_of_survey_record",
]

def show_flows(config: PipelineConfig) -> tuple[str, ...]:
    """The flows of the shows, in coding-plan order (the order of every output's rows)."""
    return tuple(plan.flow for plan in config.rqa_plans)


def survey_flows(config: PipelineConfig) -> tuple[str, ...]:
    """The flows that are not shows, in configuration order (the order their records are attached)."""
    shows = set(show_flows(config))
    return tuple(flow.name for flow in config.flows if flow.name not in shows)


def combine_shows_and_surveys(
    show_files: Sequence[Sequence[Record]],
    survey_files: Sequence[Sequence[Record]],
    *,
    config: PipelineConfig,
    run: RunContext,
) -> list[Record]:
    """The show records of every show file, in file order, each with its sender's survey records attached.

    ``show_files`` holds the records of each flow of :func:`show_flows`, ``survey_files`` those of each flow
    of :func:`survey_flows`, in the same orders. Survey records are matched on ``avf_phone_id``; a
    respondent found twice in one survey file is an error, and so is a key the show record and a survey
    record (or two survey records) both hold with different values. The attachment key is the survey's flow
    name, so the audit trail says which survey a value came through.
    """
    shows = show_flows(config)
    surveys = survey_flows(config)
    if len(show_files) != len(shows):
        raise ValueError(f"expected {len(shows)} show files ({', '.join(shows)}), got {len(show_files)}")
    if len(survey_files) != len(surveys):
        raise ValueError(f"expected {len(surveys)} survey files ({', '.join(surveys)}), got {len(survey_files)}")

    indexes = [(flow, _index_by_respondent(flow, records)) for flow, records in zip(surveys, survey_files)]
    step = run.step("generate/combine_shows_and_surveys")
    combined: list[Record] = []
    for flow, records in zip(shows, show_files):
        for record in records:
            combined.append(_attach_surveys(record, flow, indexes, step))
    return combined


def respondent_of_show_record(record: Mapping[str, Any], flow: str) -> str:
    """The respondent id of a record of the ``flow`` show file; a record without one is an error naming its run."""
    uid = record.get(PHONE_ID_KEY)
    if type(uid) is not str:
        run_id = next((v for k, v in record.items() if k.endswith(f"(Run ID) - {flow}")), None)
        raise RawDataError(f"show record {_id_problem(uid)}", path=_raw_file(flow), record=run_id, field=PHONE_ID_KEY)
    return uid


def respondent_of_survey_record(record: Mapping[str, Any], flow: str, position: int) -> str:
    """The respondent id of the survey record at ``position`` of the ``flow`` file; it must have one."""
    uid = record.get(PHONE_ID_KEY)
    if type(uid) is not str:
        raise RawDataError(f"survey record {position} {_id_problem(uid)}", path=_raw_file(flow), field=PHONE_ID_KEY)
    return uid


def _id_problem(uid: Any) -> str:
    """What is wrong with a record's respondent id that is not a text."""
    if uid is None:
        return "has no respondent id"
    return f"has a respondent id that is not a text (a UUID of the phone number table) but {json_type(uid)}"


def _index_by_respondent(flow: str, records: Sequence[Record]) -> dict[str, tuple[Record, dict[str, Any]]]:
    """uid -> (survey record, its content); the content is read once, not once per message of the respondent."""
    index: dict[str, tuple[Record, dict[str, Any]]] = {}
    for position, record in enumerate(records):
        uid = respondent_of_survey_record(record, flow, position)
        if uid in index:
            raise RawDataError(
                f"respondent appears twice in the {flow} survey (one record per respondent expected)",
                path=_raw_file(flow),
                record=uid,
                field=PHONE_ID_KEY,
            )
        index[uid] = (record, record.to_dict())
    return index


def _attach_surveys(
    record: Record, flow: str, indexes: list[tuple[str, dict[str, tuple[Record, dict[str, Any]]]]], step: Step
) -> Record:
    uid = respondent_of_show_record(record, flow)
    attached: dict[str, Record] = {}
    earlier: list[tuple[str, dict[str, Any]]] = []
    for survey_flow, index in indexes:
        entry = index.get(uid)
        if entry is None:
            continue
        survey, content = entry
        for key in content.keys() & record:
            _check_equal(record[key], content[key], survey_flow, "the message", flow, uid, key)
        for earlier_flow, earlier_content in earlier:
            for key in content.keys() & earlier_content.keys():
                _check_equal(earlier_content[key], content[key], survey_flow, f"the {earlier_flow} survey record",
                             flow, uid, key)
        attached[survey_flow] = survey
        earlier.append((survey_flow, content))
    # One layer for every survey of the respondent: within a layer the first record attached wins a shared
    # key, but shared keys are equal (checked above), so the values read are those of 2019's one-by-one
    # attachment.
    return record.updated(step, attached)


def _check_equal(existing: Any, value: Any, survey_flow: str, holder: str, flow: str, uid: str, key: str) -> None:
    if existing != value:
        raise RawDataError(
            f"the {survey_flow} survey record of this respondent holds {value!r}, {holder} holds {existing!r}; "
            f"shared keys must be equal",
            path=_raw_file(flow),
            record=uid,
            field=key,
        )


def _raw_file(flow: str) -> str:
    return f"Raw Data/{flow}.json"
