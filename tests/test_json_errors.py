"""How a file that is not JSON is described in the one-line errors of every input the pipeline reads (raw files,
coded Coda files, code schemes, the configuration): the place, then what is wrong in the reader's words."""

from __future__ import annotations

import json

import pytest

from redss_pipeline.core.errors import json_error_place


@pytest.mark.parametrize(("text", "place"), [
    ("", "the file is empty"),
    (" \n", "the file is empty"),
    ('{"a": "tab\there"}', "line 1, column 11: Invalid control character"),
    ('{"a": "never closed', "line 1, column 7: a text starting here is never closed (the file ends inside it: "
                            "cut short?)"),
    ('{"a": 1,', "line 1, column 9: Expecting property name enclosed in double quotes; the file ends there "
                 "(cut short?)"),
    ('[1] [', "line 1, column 5: Extra data"),
    ('[1]\u00a0', "line 1, column 4: Extra data"),  # a space JSON does not allow: not the end of the file
    ('[1,\n 2,\n', "line 3, column 1: Expecting value; the file ends there (cut short?)"),
])
def test_the_place_and_what_is_wrong(text, place):
    with pytest.raises(json.JSONDecodeError) as raised:
        json.loads(text)
    assert json_error_place(raised.value) == place
