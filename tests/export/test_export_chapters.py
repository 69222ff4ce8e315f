"""``--format chapters``: WebVTT chapters and the ``00:00 Title`` list from the summary tree's
first level (expected files written by hand from the rules in docs/export.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from diffcap.cli.main import cli
from diffcap.errors import ConfigError
from diffcap.export import export
from diffcap.export.chapters import chapter_file_stem, chapter_title
from diffcap.timeline import Caption, Keyframe, VideoRecord


def _node(nid, level, start, end, content, children, cites=()):
    return {
        "id": nid,
        "level": level,
        "start": start,
        "end": end,
        "content": content,
        "children": children,
        "citations": [{"text": t, "start": s, "end": e} for t, s, e in cites],
    }


def _record(vid, duration, summary, tree=None, times=(0.0,)):
    kfs = [Keyframe(i, t, -1, None) for i, t in enumerate(times)]
    caps = [Caption(str(i), f"caption {i}", time=t) for i, t in enumerate(times)]
    if summary is not None:
        caps.append(Caption("-1", summary, start=0.0, end=duration))
    rec = VideoRecord(vid, f"{vid}.mp4", duration, kfs, caps, "slide")
    if tree is not None:
        rec.extra["summary_tree"] = tree
    return rec


def _jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in records), encoding="utf-8")
    return path


LONG_TITLE = (
    "[05:13] The car drives off at dusk, past a long row of shuttered shops and a petrol "
    "station. Later it stops."
)

THREE_LEVELS = {
    "levels": 3,
    "nodes": [
        _node(
            "1.0", 1, 4.2, 312.5,
            "A man walks to a red car [00:12–01:40] and opens the door [03:05]. He waits.",
            ["0", "1"], [("[00:12–01:40]", 12.0, 100.0), ("[03:05]", 185.0, 185.0)],
        ),
        _node("1.1", 1, 312.5, 600.0, LONG_TITLE, ["2"], [("[05:13]", 313.0, 313.0)]),
        # overlaps the previous node (ends at 600): the chapters must not
        _node("1.2", 1, 590.0, 900.0, "Rain --> on the windscreen! [10:00-11:30]", ["3"],
              [("[10:00-11:30]", 600.0, 690.0)]),
        _node("2.0", 2, 0.0, 900.0, "A man drives off in the rain [00:12–01:40].",
              ["1.0", "1.1", "1.2"], [("[00:12–01:40]", 12.0, 100.0)]),
        _node("-1", 3, 0.0, 900.0, "A man drives off in the rain.", ["2.0"]),
    ],
}  # fmt: skip

THREE_LEVELS_VTT = """WEBVTT

1
00:00:00.000 --> 00:05:12.500
A man walks to a red car and opens the door

2
00:05:12.500 --> 00:09:50.000
The car drives off at dusk, past a long row of shuttered…

3
00:09:50.000 --> 00:15:00.000
Rain → on the windscreen!
"""

THREE_LEVELS_TXT = """00:00 A man walks to a red car and opens the door
05:12 The car drives off at dusk, past a long row of shuttered…
09:50 Rain → on the windscreen!
"""

OVER_AN_HOUR = {
    "levels": 2,
    "nodes": [
        _node("1.0", 1, 0.0, 1800.0, "Opening scene.", ["0"]),
        _node("1.1", 1, 1800.0, 3599.6, "Middle part [45:00].", ["1"], [("[45:00]", 2700, 2700)]),
        # no citation list: the [h:mm:ss] text is still stripped from the title
        _node("1.2", 1, 3599.6, 3725.5, "An hour in [1:00:10] it rains.", ["2"]),
        _node("1.3", 1, 3600.3, 3725.5, "Starts 0.7 s after the last: folded into it.", ["3"]),
        _node("1.4", 1, 3725.5, 7000.0, "The end [1:02:05–1:04:00].", ["4"],
              [("[1:02:05–1:04:00]", 3725.0, 3840.0)]),
        _node("-1", 2, 0.0, 7384.2, "A long day.", ["1.0", "1.1", "1.2", "1.3", "1.4"]),
    ],
}  # fmt: skip

OVER_AN_HOUR_VTT = """WEBVTT

1
00:00:00.000 --> 00:30:00.000
Opening scene

2
00:30:00.000 --> 00:59:59.600
Middle part

3
00:59:59.600 --> 01:02:05.500
An hour in it rains

4
01:02:05.500 --> 02:03:04.200
The end
"""

OVER_AN_HOUR_TXT = """00:00 Opening scene
30:00 Middle part
59:59 An hour in it rains
1:02:05 The end
"""


def _read(out: Path, stem: str) -> tuple[str, str]:
    return (
        (out / f"{stem}.vtt").read_text(encoding="utf-8"),
        (out / f"{stem}.txt").read_text(encoding="utf-8"),
    )


def test_three_level_tree_gives_first_level_chapters(tmp_path):
    src = _jsonl(tmp_path / "captions.jsonl", [_record("film", 900.0, "x", THREE_LEVELS)])
    result = export(src, "chapters", tmp_path / "chapters", _quiet())
    assert _read(tmp_path / "chapters", "film") == (THREE_LEVELS_VTT, THREE_LEVELS_TXT)
    assert (result.records, result.items) == (1, 1)
    assert result.extra["chapters"] == 3 and result.extra["from_tree"] == 1
    assert "3 chapters" in result.line()


def test_times_past_an_hour_and_short_chapters_folded(tmp_path):
    src = _jsonl(tmp_path / "c.jsonl", [_record("day", 7384.2, "A long day.", OVER_AN_HOUR)])
    export(src, "chapters", tmp_path / "out", _quiet())
    assert _read(tmp_path / "out", "day") == (OVER_AN_HOUR_VTT, OVER_AN_HOUR_TXT)


def test_record_without_tree_is_one_chapter_from_its_summary(tmp_path):
    recs = [
        _record("short", 10.0, "A red ball rolls across a table [00:01–00:03]. It stops."),
        _record("nosummary", 10.0, None),
        # a tree without a usable first level falls back to the summary too
        _record("badtree", 4.0, "Only a summary", {"nodes": [{"level": 1, "start": "0"}]}),
    ]
    result = export(_jsonl(tmp_path / "c.jsonl", recs), "chapters", tmp_path / "o", _quiet())
    assert _read(tmp_path / "o", "short") == (
        "WEBVTT\n\n1\n00:00:00.000 --> 00:00:10.000\nA red ball rolls across a table\n",
        "00:00 A red ball rolls across a table\n",
    )
    assert _read(tmp_path / "o", "badtree")[1] == "00:00 Only a summary\n"
    assert not (tmp_path / "o" / "nosummary.vtt").exists()
    assert (result.records, result.items) == (3, 2)
    assert result.skipped == {"without a summary": 1}
    assert result.extra["from_summary"] == 2


HOSTILE_IDS = ["../../escape", "/etc/passwd", "..", "a/b", "a?b", ".hidden", "", "ünï code"]


def test_hostile_video_ids_stay_inside_the_folder(tmp_path):
    recs = [_record(vid, 5.0, f"Summary {i}.") for i, vid in enumerate(HOSTILE_IDS)]
    recs.append(_record("safe-id_1.2", 5.0, "The safe one."))
    out = tmp_path / "deep" / "out"
    result = export(_jsonl(tmp_path / "c.jsonl", recs), "chapters", out, _quiet())
    assert result.items == len(recs)
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in {".vtt", ".txt"})
    assert len(written) == 2 * len(recs)
    assert all(p.parent == out for p in written)
    names = {p.stem for p in written}
    assert len(names) == len(recs)  # "a/b" and "a?b" do not collide
    assert all(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", n) for n in names)
    assert _read(out, "safe-id_1.2")[1] == "00:00 The safe one\n"
    for i, vid in enumerate(HOSTILE_IDS):
        assert (out / f"{chapter_file_stem(vid)}.txt").read_text() == f"00:00 Summary {i}\n"
    assert chapter_file_stem("../../escape").startswith("escape-")
    assert chapter_file_stem("x" * 300) != chapter_file_stem("x" * 301)


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("", ""),
        ("   \n ", ""),
        ("[00:01] [00:02–00:05]", ""),
        ("Wait! Then go.", "Wait!"),
        ("Is it ([00:04]) red? Yes.", "Is it red?"),
        ("Is it (see [00:04]) red?", "Is it (see) red?"),
        ("[00:12 - 01:40], then a dog.", "then a dog"),
        ("Pi is 3.14 here. Next.", "Pi is 3.14 here"),
        ("a\tb\n\nc [1:02:05-1:04:00] d", "a b c d"),
        ("x" * 80, "x" * 59 + "…"),
        ("word " * 20, "word word word word word word word word word word word…"),
    ],
)
def test_title_rule(content, title):
    assert chapter_title(content) == title
    assert len(chapter_title(content)) <= 60


def test_cli_writes_a_folder_from_a_run_directory(tmp_path):
    from diffcap.store import RunStore
    from diffcap.store.db import VideoEntry

    run = tmp_path / "run"
    (run / "records").mkdir(parents=True)
    store = RunStore.open(run / "run.sqlite")  # the records come from the real run store
    rec = _record("film", 900.0, "x", THREE_LEVELS)
    store.add_videos([VideoEntry("film", "film.mp4")])
    store.complete("film", rec.to_json())
    store.close()
    out = tmp_path / "existing"
    out.mkdir()
    res = _cli(run, "chapters", out)
    assert res.exit_code == 0, res.output
    assert "chapters: 1 records -> 1 items" in res.output
    assert _read(out, "film") == (THREE_LEVELS_VTT, THREE_LEVELS_TXT)
    # a folder is refused for the one-file formats, a file for chapters
    res = _cli(run, "jsonl", out)
    assert res.exit_code == 2 and "is a folder" in res.output
    a_file = out / "film.txt"
    res = _cli(run, "chapters", a_file)
    assert isinstance(res.exception, ConfigError) and "writes a folder" in str(res.exception)


def _cli(source, fmt, out):
    return CliRunner().invoke(
        cli, ["-q", "export", str(source), "--format", fmt, "--out", str(out)]
    )


def _quiet():
    from diffcap.export import ExportOptions

    return ExportOptions(progress=False)
