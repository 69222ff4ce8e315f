"""The summary tree as the viewer reads it: untrusted fields, citations cut from the text,
and each node drawn once whatever the record's children say."""

from __future__ import annotations

from diffcap.timeline import format_clock
from diffcap.web.data import load_run
from diffcap.web.listing import entry_detail
from diffcap.web.tree import read_tree, split_citations, tree_view
from support.web_runs import video, write_run_dir


def _n(nid, level, start, end, children=(), content="", citations=()):
    return {
        "id": nid,
        "level": level,
        "start": start,
        "end": end,
        "content": content,
        "children": list(children),
        "citations": list(citations),
    }


def test_citations_are_cut_from_the_text_by_their_verbatim_text():
    cites = [
        {"text": "[00:12–01:40]", "start": 12.0, "end": 100.0},
        {"text": "[03:05]", "start": 185.0, "end": 185.0},
        {"text": "[00:12-01:40]", "start": 12.5, "end": 100.0},  # a hyphen, another citation
    ]
    text = "A man [00:12–01:40] walks; [03:05] a car, [03:05] again, [00:12-01:40] [04:00]."
    assert split_citations(text, cites) == [
        {"text": "A man "},
        {"text": "[00:12–01:40]", "t": 12.0},
        {"text": " walks; "},
        {"text": "[03:05]", "t": 185.0},
        {"text": " a car, "},
        {"text": "[03:05]", "t": 185.0},
        {"text": " again, "},
        {"text": "[00:12-01:40]", "t": 12.5},
        {"text": " [04:00]."},  # not in the citation list: stays text
    ]
    # regex characters in a citation are matched literally; the longest text wins
    assert split_citations("x [1.*] [1.*]+ y", [
        {"text": "[1.*]", "start": 1.0},
        {"text": "[1.*]+", "start": 2.0},
    ]) == [
        {"text": "x "}, {"text": "[1.*]", "t": 1.0}, {"text": " "},
        {"text": "[1.*]+", "t": 2.0}, {"text": " y"},
    ]  # fmt: skip
    assert split_citations("", cites) == []
    assert split_citations("plain", []) == [{"text": "plain"}]


def test_malformed_fields_are_dropped_not_trusted():
    raw = {
        "levels": "3",
        "nodes": [
            _n("1.0", 1, 0.0, 5.0, ["0", 1, {"x": 1}], "ok [00:01]", [
                {"text": "[00:01]", "start": 1.0, "end": 2.0},
                {"text": "", "start": 1.0},
                {"text": "[00:02]", "start": "2"},
                {"text": "[00:03]", "start": float("nan")},
                "[00:04]",
            ]),
            _n("1.1", 1, "5", 9.0),
            _n("1.2", True, 5.0, 9.0),
            {"id": "1.3", "level": 1, "start": 9.0, "end": 8.0, "content": ["no"]},
            "not a node",
            _n("-1", 2, 0.0, 9.0, ["1.0", "1.3"], "root"),
        ],
    }  # fmt: skip
    tree = read_tree(raw)
    assert tree is not None and tree["levels"] == 2
    assert [n["id"] for n in tree["nodes"]] == ["1.0", "1.3", "-1"]
    first = tree["nodes"][0]
    assert first["children"] == ["0", "1"]
    assert first["citations"] == [{"text": "[00:01]", "start": 1.0, "end": 2.0}]
    assert tree["nodes"][1]["end"] == 9.0 and tree["nodes"][1]["content"] == ""
    assert read_tree(None) is None
    assert read_tree({"nodes": "x"}) is None
    assert read_tree([1, 2]) is None
    assert read_tree({"nodes": [{"id": "x"}]}) is None


def test_each_node_is_drawn_once_and_loops_are_cut():
    raw = {
        "levels": 3,
        "nodes": [
            _n("1.0", 1, 0.0, 10.0, ["0", "1"]),
            _n("1.1", 1, 10.0, 20.0, ["2"]),
            _n("1.2", 1, 20.0, 30.0, ["3"]),
            _n("1.3", 1, 30.0, 40.0, ["4"]),  # no parent names it
            _n("2.0", 2, 0.0, 20.0, ["1.0", "1.1", "missing", "2.0", "-1"]),
            _n("2.1", 2, 10.0, 30.0, ["1.1", "1.2"]),  # 1.1 already drawn under 2.0
            _n("2.0", 2, 0.0, 99.0, ["1.3"]),  # a repeated id: the first node stays
            _n("-1", 3, 0.0, 3725.5, ["2.0", "2.1", "-1"]),
        ],
    }
    view = tree_view(read_tree(raw))
    assert view is not None and view["root"] == "-1" and view["levels"] == 3
    nodes = view["nodes"]
    assert nodes["-1"]["kids"] == ["2.0", "2.1"]
    assert nodes["2.0"]["kids"] == ["1.0", "1.1"]
    assert nodes["2.1"]["kids"] == ["1.2"]
    assert nodes["2.0"]["end"] == 20.0
    assert view["rest"] == ["1.3"]
    assert nodes["1.0"]["captions"] == 2 and nodes["1.0"]["kids"] == []
    assert nodes["-1"]["label"] == "00:00–1:02:05"
    assert nodes["1.3"]["label"] == "00:30–00:40"


def test_root_without_the_schema_id_is_the_last_top_node():
    raw = {"nodes": [_n("a", 1, 0.0, 5.0), _n("b", 2, 0.0, 5.0, ["a"]), _n("c", 2, 5.0, 9.0)]}
    view = tree_view(read_tree(raw))
    assert view is not None and view["root"] == "c"
    assert view["rest"] == ["b"] and view["nodes"]["b"]["kids"] == ["a"]


def test_clock_labels():
    assert [format_clock(t) for t in (0, 59.99, 75.9, 3599.9, 3600, 3725.5, 36000)] == [
        "00:00",
        "00:59",
        "01:15",
        "59:59",
        "1:00:00",
        "1:02:05",
        "10:00:00",
    ]


def test_detail_carries_the_tree_only_when_the_record_has_one(tmp_path):
    tree = video("t", [0.0, 1.0], 2.0)
    tree["summary_tree"] = {
        "levels": 2,
        "nodes": [
            _n("1.0", 1, 0.0, 2.0, ["0", "1"], "a [00:01] b", [{"text": "[00:01]", "start": 1}]),
            _n("-1", 2, 0.0, 2.0, ["1.0"], "summary of t"),
        ],
    }
    run = load_run(write_run_dir(tmp_path / "run", [tree, video("p", [0.0], 1.0)]))
    details = {e.video_id: entry_detail(0, e, lambda i, k: None, None) for e in run.entries}
    assert details["p"]["summary_tree"] is None
    view = details["t"]["summary_tree"]
    assert view["nodes"]["1.0"]["parts"] == [
        {"text": "a "},
        {"text": "[00:01]", "t": 1.0},
        {"text": " b"},
    ]
