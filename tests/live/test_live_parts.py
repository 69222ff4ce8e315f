"""The pure parts of live captioning: the drop queue, the HLS playlist, durations, lines."""

from __future__ import annotations

import asyncio
import json

import click
import pytest

from diffcap.cli.live import human, parse_duration
from diffcap.io.livefile import EventLog, LiveState, read_lines
from diffcap.live.hls import WallClock, parse_playlist, parse_time
from diffcap.live.queue import DropQueue

PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:7
#EXTINF:2.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T13:22:30.232+0000
live7.ts
#EXTINF:1.500000,
live8.ts
#EXT-X-DISCONTINUITY
#EXTINF:2.000000,
live9.ts
"""


class Kf:
    def __init__(self, n: int) -> None:
        self.n = n


def test_drop_queue_keeps_the_newest_and_never_drops_markers():
    async def go() -> None:
        q: DropQueue[Kf] = DropQueue(2, Kf)
        a, b, c, d = Kf(1), Kf(2), Kf(3), Kf(4)
        assert q.put(a) is None and q.put("gap") is None and q.put(b) is None
        assert q.put(c) is a  # full: the oldest waiting keyframe falls out
        assert q.put(d) is b
        assert [await q.get() for _ in range(3)] == ["gap", c, d]

    asyncio.run(go())
    with pytest.raises(ValueError):
        DropQueue(0, Kf)


def test_playlist_sequence_durations_and_program_date_time():
    pl = parse_playlist(PLAYLIST, "http://h/x/live.m3u8")
    assert [s.sequence for s in pl.segments] == [7, 8, 9]
    assert pl.segments[0].uri == "http://h/x/live7.ts"
    t0 = parse_time("2026-12-07T13:22:30.232+0000")
    assert t0 == pytest.approx(parse_time("2026-12-07T13:22:30.232Z"))
    assert pl.segments[0].wall == pytest.approx(t0)
    assert pl.segments[1].wall == pytest.approx(t0 + 2.0)  # carried on, as players do
    assert pl.segments[2].wall is None and pl.segments[2].discontinuity  # not across one
    assert not pl.ended and parse_playlist(PLAYLIST + "#EXT-X-ENDLIST\n").ended
    master = parse_playlist(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/a.m3u8\n", "http://h/m.m3u8"
    )
    assert master.variant == "http://h/low/a.m3u8" and not master.segments


def test_wall_clock_walks_segments_from_the_anchor():
    pl = parse_playlist(PLAYLIST)
    clock = WallClock("http://unused.invalid/x.m3u8", 7, pl)
    t0 = pl.segments[0].wall
    assert clock.wall(0.5) == pytest.approx(t0 + 0.5)
    assert clock.wall(2.25) == pytest.approx(t0 + 2.25)  # in segment 8
    clock2 = WallClock("http://unused.invalid/x.m3u8", 8, pl)
    assert clock2.wall(0.25) == pytest.approx(t0 + 2.25)  # started at segment 8


def test_durations():
    assert parse_duration("90") == 90 and parse_duration("10m") == 600
    assert parse_duration("1.5h") == 5400 and parse_duration("45s") == 45
    with pytest.raises(click.BadParameter):
        parse_duration("ten minutes")


def test_a_torn_last_line_is_dropped_and_state_is_read_back(tmp_path):
    path = tmp_path / "live.jsonl"
    log = EventLog(path)
    log.write({"type": "start", "source": "s"})
    wall = "2026-12-07T13:22:30.232+00:00"
    cap = {"type": "caption", "idx": "0", "kind": "first", "time": 1.5, "wall": wall,
           "keyframe": "k.jpg", "content": "a cat"}  # fmt: skip
    log.write(cap)
    log.close()
    with path.open("a") as fh:
        fh.write('{"type": "caption", "idx": "1", "con')  # killed mid-write
    assert len(read_lines(path)) == 2
    state = LiveState.read(path)
    assert [c.content for c in state.captions] == ["a cat"] and state.last[0] == 1.5
    EventLog(path).close()  # opening for append cuts the torn tail
    assert path.read_text().endswith("}\n") and len(path.read_text().splitlines()) == 2
    assert "a cat" in human(cap) and "00:01" in human(cap)
    assert json.loads(path.read_text().splitlines()[1])["idx"] == "0"
