"""Parquet rows go through Arrow's JSON reader (no pandas import): the same table as
``pa.Table.from_pylist`` for every kind of record, and a fallback for rows JSON cannot carry."""

from __future__ import annotations

import math
import subprocess
import sys

import pyarrow as pa

from diffcap.io.parquet import RECORD_SCHEMA, _table, parquet_row

RECORDS = [
    {
        "video_id": "a",
        "video_path": "/v/á b.mp4",
        "duration": 12,  # an int in a float column
        "mode": "slide",
        "keyframes": [{"idx": 0, "time": 0, "file": "k/0.jpg"}, {"idx": 1, "time": 2.5}],
        "captions": [
            {"idx": 0, "content": 'line\n"quoted" \u2028 emoji \U0001f600', "time": 0.0},
            {"idx": -1, "content": "the summary", "start": 0, "end": 12.0},
        ],
        "usage": {"requests": 3, "prompt_tokens": 2**40, "cost_usd": 0},
        "span": {"start": 1, "end": 2.0},
        "provenance": {"model": "m", "nested": {"x": [1, None]}},
        "anything_else": {"k": "v"},
    },
    {"video_id": "b"},  # every optional field missing
    {"video_id": "c", "keyframes": [], "captions": [], "usage": {}},
]


def test_rows_make_the_same_table_as_from_pylist() -> None:
    rows = [parquet_row(r) for r in RECORDS]
    table = _table(rows)
    assert table.schema.equals(RECORD_SCHEMA)
    assert table.equals(pa.Table.from_pylist(rows, schema=RECORD_SCHEMA))
    assert table.to_pylist()[0]["captions"][0]["content"] == RECORDS[0]["captions"][0]["content"]


def test_the_reader_path_is_taken_and_imports_no_pandas() -> None:
    code = (
        "import sys\n"
        "from diffcap.io.parquet import _table, parquet_row\n"
        f"t = _table([parquet_row(r) for r in {RECORDS!r}])\n"
        "print(t.num_rows, 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(RECORDS)), "False"]  # no fallback to from_pylist


def test_rows_json_cannot_carry_still_make_a_table() -> None:
    rows = [parquet_row({**RECORDS[0], "duration": math.nan})]
    table = _table(rows)
    assert math.isnan(table.to_pylist()[0]["duration"])
    assert table.schema.equals(RECORD_SCHEMA)


def test_no_rows_make_an_empty_table_with_the_schema() -> None:
    table = _table([])
    assert table.num_rows == 0 and table.schema.equals(RECORD_SCHEMA)
