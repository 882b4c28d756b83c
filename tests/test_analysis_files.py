"""The CSV outputs: columns derived from the configuration, the 9.5 dialect, production rows (pipeline.md 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from record_csv import write_records

from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.records import Record
from redss_pipeline.export.analysis_files import (
    RecordLines,
    analysis_columns,
    icr_columns,
    in_production_file,
    production_columns,
    write_icr_csv,
    write_message_lines,
)

# The header of csap_mes.csv and csap_ind.csv, typed from pipeline.md 9.1.
SPEC_COLUMNS = [
    # 1-2
    "uid", "operator",
    # 3-11
    "consent_withdrawn", "sms_ad", "radio_promo", "radio_show", "non_logical_time", "radio_participation_s01e01",
    "radio_participation_s01e02", "radio_participation_s01e03", "radio_participation_s01e04",
    # 12-37
    "rqa_s01e01_NA", "rqa_s01e01_NC", "rqa_s01e01_NIC", "rqa_s01e01_NR", "rqa_s01e01_NS", "rqa_s01e01_STOP",
    "rqa_s01e01_WS", "rqa_s01e01_access_to_education", "rqa_s01e01_access_to_water",
    "rqa_s01e01_availability_of_health_facilities", "rqa_s01e01_committees_to_be_organised_on_displacement",
    "rqa_s01e01_community_consultation", "rqa_s01e01_crowdfunding", "rqa_s01e01_financial_support",
    "rqa_s01e01_food_assistance", "rqa_s01e01_government_to_support_communities", "rqa_s01e01_job_creation",
    "rqa_s01e01_just_and_transparent_delivery_of_aid", "rqa_s01e01_keep_in_one_place", "rqa_s01e01_land",
    "rqa_s01e01_other", "rqa_s01e01_peace_and_security", "rqa_s01e01_return_to_area_of_origin",
    "rqa_s01e01_sanitation_and_hygiene", "rqa_s01e01_shelter", "rqa_s01e01_skills_training",
    # 38-61
    "rqa_s01e02_NA", "rqa_s01e02_NC", "rqa_s01e02_NIC", "rqa_s01e02_NR", "rqa_s01e02_NS", "rqa_s01e02_STOP",
    "rqa_s01e02_WS", "rqa_s01e02_can_contaminate_with_disease", "rqa_s01e02_come_from_a_place_of_need",
    "rqa_s01e02_consult_with_them", "rqa_s01e02_government_to_be_structured_in_right_way",
    "rqa_s01e02_integrate_other", "rqa_s01e02_integration_facilitates_assistance",
    "rqa_s01e02_integration_strengthens_social_cohesion", "rqa_s01e02_necessary_to_end_displacement",
    "rqa_s01e02_needs_can_be_better_met_in_country_side", "rqa_s01e02_religion_commands_it",
    "rqa_s01e02_remove_for_social_cohesion", "rqa_s01e02_return_other", "rqa_s01e02_same_identity",
    "rqa_s01e02_should_be_given_jobs", "rqa_s01e02_they_are_farmers_pastoralists", "rqa_s01e02_they_are_in_need",
    "rqa_s01e02_they_put_pressure_on_basic_services",
    # 62-83
    "rqa_s01e03_NA", "rqa_s01e03_NC", "rqa_s01e03_NIC", "rqa_s01e03_NR", "rqa_s01e03_NS", "rqa_s01e03_STOP",
    "rqa_s01e03_WS", "rqa_s01e03_axes_of_discrimination_access_to_education",
    "rqa_s01e03_axes_of_discrimination_access_to_health_care",
    "rqa_s01e03_axes_of_discrimination_access_to_housing",
    "rqa_s01e03_axes_of_discrimination_access_to_job_opportunities",
    "rqa_s01e03_axes_of_discrimination_rights_are_violated", "rqa_s01e03_discriminating_actor_community",
    "rqa_s01e03_discriminating_actor_government", "rqa_s01e03_discriminating_actor_ngos",
    "rqa_s01e03_reasons_for_discrimination_community_feels_superior",
    "rqa_s01e03_reasons_for_discrimination_lack_of_host-idp_interaction",
    "rqa_s01e03_reasons_for_lack_of_discrimination_are_citizens",
    "rqa_s01e03_reasons_for_lack_of_discrimination_common_identity",
    "rqa_s01e03_reasons_for_lack_of_discrimination_deserve_assistance",
    "rqa_s01e03_reasons_for_lack_of_discrimination_no_displaced_people",
    "rqa_s01e03_reasons_for_lack_of_discrimination_religion",
    # 84-101
    "rqa_s01e04_NA", "rqa_s01e04_NC", "rqa_s01e04_NIC", "rqa_s01e04_NR", "rqa_s01e04_NS", "rqa_s01e04_STOP",
    "rqa_s01e04_WS", "rqa_s01e04_allow_them_to_stay_on_current_land", "rqa_s01e04_build_housing",
    "rqa_s01e04_combat_inequality", "rqa_s01e04_good_governance", "rqa_s01e04_other",
    "rqa_s01e04_peace_and_security", "rqa_s01e04_procure_them_land", "rqa_s01e04_religion",
    "rqa_s01e04_return_and_relocation", "rqa_s01e04_set_up_committee_to_handle",
    "rqa_s01e04_support_justice_system",
    # 102-103
    "rqa_s01e02_integrate_return", "rqa_s01e03_yes_no",
    # 104-107
    "rqa_s01e01_raw", "rqa_s01e02_raw", "rqa_s01e03_raw", "rqa_s01e04_raw",
    # 108-127
    "gender", "gender_raw", "mogadishu_sub_district", "mogadishu_sub_district_raw", "district", "region", "state",
    "zone", "age", "age_raw", "idp_camp", "idp_camp_raw", "recently_displaced", "recently_displaced_raw",
    "hh_language", "hh_language_raw", "repeated", "repeated_raw", "involved", "involved_raw",
]

SPEC_PRODUCTION_COLUMNS = [
    "uid", "rqa_s01e01_raw", "rqa_s01e02_raw", "rqa_s01e03_raw", "rqa_s01e04_raw", "gender_raw",
    "mogadishu_sub_district_raw", "age_raw", "idp_camp_raw", "recently_displaced_raw", "hh_language_raw",
    "repeated_raw", "involved_raw",
]


def test_analysis_columns_are_the_127_of_the_spec_in_order(config):
    """The derived header is exactly pipeline.md 9.1's list, column for column."""
    columns = analysis_columns(config)
    assert len(columns) == 127
    assert columns == SPEC_COLUMNS


def test_matrix_columns_put_control_codes_before_reasons(config):
    """Code-point order puts the upper-case control codes of a show before its lower-case reasons."""
    columns = analysis_columns(config)
    assert columns[11:18] == [f"rqa_s01e01_{c}" for c in ("NA", "NC", "NIC", "NR", "NS", "STOP", "WS")]
    assert columns[18] == "rqa_s01e01_access_to_education"


def test_location_levels_after_the_sub_district_have_no_raw_column(config):
    """Group 6 lists each survey raw key once, after the first plan that reads it."""
    columns = analysis_columns(config)
    assert columns.count("mogadishu_sub_district_raw") == 1
    start = columns.index("mogadishu_sub_district")
    assert columns[start:start + 6] == [
        "mogadishu_sub_district", "mogadishu_sub_district_raw", "district", "region", "state", "zone"]


def test_production_columns_are_the_13_of_the_spec(config):
    """csap_prod.csv has uid, the four show texts and the eight survey answers."""
    assert production_columns(config) == SPEC_PRODUCTION_COLUMNS


def test_production_rows_leave_out_noise_and_withdrawn_messages():
    """Only messages whose noise is false are produced; a withdrawn message's "STOP" noise counts as true."""
    messages = [{"uid": "a", "noise": False}, {"uid": "b", "noise": True}, {"uid": "STOP", "noise": "STOP"},
                {"uid": "c", "noise": False}]
    assert [m["uid"] for index, m in enumerate(messages) if in_production_file(m, index)] == ["a", "c"]


def test_production_rows_need_a_noise_flag():
    """A message without noise is an error naming the record and the field."""
    with pytest.raises(RawDataError, match=r"record u1: field 'noise'"):
        in_production_file({"uid": "u1"}, 0)


def test_csv_quotes_only_commas_quotes_and_newlines(tmp_path: Path):
    """Minimal quoting with doubled quotes; rows end in "\\n". A bare carriage return is quoted (deliberate
    difference from 2019, which left it bare so readers split the row)."""
    path = tmp_path / "out.csv"
    rows = [{"a": "x,y", "b": 'say "hi"', "c": "two\nlines"}, {"a": "cr\rhere", "b": "plain", "c": "ünï"}]
    write_records(path, rows, ["a", "b", "c"])
    assert path.read_bytes() == (
        b'a,b,c\n"x,y","say ""hi""","two\nlines"\n"cr\rhere",plain,\xc3\xbcn\xc3\xaf\n'
    )


def test_csv_absent_and_none_are_empty_and_integers_decimal(tmp_path: Path):
    """A missing key or None is an empty cell; an integer run id is written in decimal."""
    path = tmp_path / "out.csv"
    write_records(path, [{"a": None, "c": 1234567}], ["a", "b", "c"])
    assert path.read_bytes() == b"a,b,c\n,,1234567\n"


def test_csv_reads_records_through_attached_surveys(tmp_path: Path, run):
    """Cells come from the record's effective values, including attached survey answers."""
    step = run.step("test/load")
    survey = Record.create(step, {"gender_raw": "naag"})
    message = Record.create(step, {"uid": "u1"}).updated(step, {"csap_demog": survey})
    path = tmp_path / "out.csv"
    write_records(path, [message], ["uid", "gender_raw"])
    assert path.read_text(encoding="utf-8") == "uid,gender_raw\nu1,naag\n"


def test_csv_records_with_different_key_orders_and_missing_keys(tmp_path: Path, run):
    """Records whose keys differ in order and in presence each get their own values in the right columns."""
    step = run.step("test/load")
    first = Record.create(step, {"a": "1", "b": "2"})
    second = Record.create(step, {"b": "3", "c": "4"}).updated(step, {"a": "5"})
    third = first.updated(step, {"b": "6"})
    path = tmp_path / "out.csv"
    write_records(path, [first, second, third, {"c": "7"}], ["c", "a", "b"])
    assert path.read_text(encoding="utf-8") == "c,a,b\n,1,2\n4,5,3\n,1,6\n7,,\n"
    write_records(path, [first, second], ["b"])
    assert path.read_text(encoding="utf-8") == "b\n2\n3\n"


def test_csv_header_is_written_without_rows(tmp_path: Path, config):
    """An empty output still has its header line and nothing else; no BOM."""
    path = tmp_path / "csap_prod.csv"
    write_records(path, [], production_columns(config))
    assert path.read_bytes() == (",".join(SPEC_PRODUCTION_COLUMNS) + "\n").encode("ascii")


def test_icr_file_has_run_id_and_raw_text(tmp_path: Path, config):
    """An ICR file's header is the show's run id and raw key; a moved message's run id cell is empty."""
    plan = config.rqa_plan("s01e02")
    assert icr_columns(plan) == ["rqa_s01e02_run_id", "rqa_s01e02_raw"]
    path = tmp_path / "s01e02.csv"
    write_icr_csv(path, plan, [{"rqa_s01e02_run_id": 17, "rqa_s01e02_raw": "a"}, {"rqa_s01e02_raw": "b"}])
    assert path.read_bytes() == b"rqa_s01e02_run_id,rqa_s01e02_raw\n17,a\n,b\n"


def test_writing_replaces_the_file_whole(tmp_path: Path):
    """A rewrite replaces the earlier content and leaves no temporary file behind."""
    path = tmp_path / "out.csv"
    path.write_text("old content that is longer than the new one\n", encoding="utf-8")
    write_records(path, [{"a": "1"}], ["a"])
    assert path.read_text(encoding="utf-8") == "a\n1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_message_and_production_files_are_written_in_one_pass(tmp_path: Path):
    """Each message's line goes to the message file, its production line (when it has one) to the production
    file, in the order given; both files get their header."""
    lines = [("a,1\n", "a\n"), ("b,2\n", None), ("c,3\n", "c\n")]
    write_message_lines(tmp_path / "mes.csv", tmp_path / "prod.csv", iter(lines), columns=["uid", "n"],
                        production_columns=["uid"])
    assert (tmp_path / "mes.csv").read_text(encoding="utf-8") == "uid,n\na,1\nb,2\nc,3\n"
    assert (tmp_path / "prod.csv").read_text(encoding="utf-8") == "uid\na\nc\n"


def test_a_failure_while_writing_the_message_files_leaves_neither(tmp_path: Path):
    """An error part way through (here a bad line) leaves no message file, no production file and no temporary
    file: the earlier files stay as they were."""
    (tmp_path / "mes.csv").write_text("old\n", encoding="utf-8")

    def lines():
        yield "a,1\n", "a\n"
        raise RawDataError("broken", record="b")

    with pytest.raises(RawDataError, match="broken"):
        write_message_lines(tmp_path / "mes.csv", tmp_path / "prod.csv", lines(), columns=["uid", "n"],
                            production_columns=["uid"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mes.csv"]
    assert (tmp_path / "mes.csv").read_text(encoding="utf-8") == "old\n"


def test_matrix_columns_are_rendered_from_the_shows_codes_in_any_header_order(config, run):
    """Matrix columns of two shows interleaved with other columns: each cell is "1" for a code in its show's list,
    "0" for one not in it, and STOP for a show whose codes are STOP; a header without a show's columns does not
    read that show's codes."""
    columns = ["rqa_s01e02_NA", "uid", "rqa_s01e01_land", "rqa_s01e02_STOP", "rqa_s01e01_NA", "rqa_s01e01_raw"]
    lines = RecordLines(columns, shows=config.rqa_plans)
    record = Record.create(run.step("test/load"), {
        "uid": "u1", "rqa_s01e01_raw": "=land", "rqa_s01e01_codes": ["shelter", "land"],
        "rqa_s01e02_codes": ["NA"], "rqa_s01e03_codes": "STOP"})
    assert lines(record) == "1,u1,1,0,0,'=land\n"
    withdrawn = Record.create(run.step("test/load"), {"uid": "STOP", "rqa_s01e01_codes": "STOP", "rqa_s01e02_codes": "STOP"})
    assert lines(withdrawn) == "STOP,STOP,STOP,STOP,STOP,\n"
    assert RecordLines(["uid", "rqa_s01e01_raw"], shows=config.rqa_plans)(_NoCodes(uid="u1", rqa_s01e01_raw="x")) == "u1,x\n"
    lone = RecordLines(["rqa_s01e04_NA"], shows=config.rqa_plans)
    assert (lone(record), lone(withdrawn)) == ('""\n', '""\n')  # no codes: a lone empty field, as csv writes it


class _NoCodes(dict):
    """A record whose shows' codes must not be read (a header without matrix columns has no use for them)."""

    def get(self, key, default=None):
        assert not key.endswith("_codes"), key
        return super().get(key, default)


def test_one_renderer_gives_each_row_its_own_cells_with_the_matrix_remembered(config, run, monkeypatch):
    """Rows sharing their codes but not their other cells, rows whose codes are no list of texts (never confused
    with a list: True is not 1, a tuple is not a list), and rows after the remembered runs are forgotten (a limit
    of one) each get their own line."""
    monkeypatch.setattr(RecordLines, "_MATRIX_MEMO_LIMIT", 1)
    lines = RecordLines(["uid", "rqa_s01e01_land", "rqa_s01e01_NA"], shows=config.rqa_plans)

    def row(uid, codes):
        return Record.create(run.step("test/load"), {"uid": uid, "rqa_s01e01_codes": codes})

    rows = [row("a", ["land"]), row("b", ["land"]), row("c", ("land",)), row("d", ["land"]), row("e", True),
            row("f", ["NA"]), row("g", ["land"]), row("h", 1)]
    assert [lines(r) for r in rows] == ["a,1,0\n", "b,1,0\n", "c,\"('land',)\",\"('land',)\"\n", "d,1,0\n",
                                        "e,True,True\n", "f,0,1\n", "g,1,0\n", "h,1,1\n"]
