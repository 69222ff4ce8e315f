"""Every kind of bad input gives a typed error with a one-line message, or partial frames."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest

from diffcap.errors import (
    CorruptVideo,
    EmptyFile,
    NotAFile,
    NotAVideo,
    NoVideoStream,
    UnsupportedCodec,
    VideoError,
    VideoNotFound,
)
from diffcap.video import open_video, probe
from diffcap.video.synth import Scene, write_audio_only, write_video
from support.videos import (
    corrupt_after_header,
    corrupt_payload,
    truncate,
    write_png_as,
    write_text,
    write_unknown_codec_mkv,
)

SCENES = [Scene(1.0), Scene(1.0), Scene(1.0), Scene(1.0)]


def _expect(exc_type: type[VideoError], path: Path, *words: str) -> VideoError:
    for opener in (probe, open_video):
        with pytest.raises(exc_type) as caught:
            opener(path)
    err = caught.value
    text = str(err)
    assert "\n" not in text and str(path) in text
    assert err.path == str(path)
    for w in words:
        assert w in text.lower()
    return err


def test_missing_path(tmp_path: Path) -> None:
    _expect(VideoNotFound, tmp_path / "nope.mp4", "no such file")


def test_directory(tmp_path: Path) -> None:
    _expect(NotAFile, tmp_path, "directory")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").touch()
    _expect(EmptyFile, tmp_path / "empty.mp4", "empty")


def test_text_file(tmp_path: Path) -> None:
    _expect(NotAVideo, write_text(tmp_path / "notes.mp4"), "not a video")


def test_png_renamed_to_mp4(tmp_path: Path) -> None:
    _expect(NotAVideo, write_png_as(tmp_path / "photo.mp4"), "still image")


def test_audio_only(tmp_path: Path) -> None:
    for name in ("song.m4a", "song.mp4"):
        err = _expect(NoVideoStream, write_audio_only(tmp_path / name, 0.5), "no video stream")
        assert err.reason == "no_video_stream" and "audio" in str(err)


def test_unknown_codec(video_factory, tmp_path: Path) -> None:
    mkv = video_factory("mkv-h264", suffix=".mkv").path
    _expect(UnsupportedCodec, write_unknown_codec_mkv(mkv, tmp_path / "alien.mkv"), "codec")


def test_mp4_cut_before_its_index_is_corrupt(tmp_path: Path) -> None:
    """An MP4 written index-last and cut in half has no moov: damaged, not 'not a video'."""
    src = tmp_path / "moov-last.mp4"
    with av.open(str(src), "w") as c:  # plain PyAV mp4: the index goes at the end
        s = c.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        s.width, s.height = 64, 48
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), i * 10, np.uint8), format="rgb24"
            )
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    err = _expect(CorruptVideo, truncate(src, tmp_path / "cut.mp4"), "truncated")
    assert err.reason == "corrupt"


def test_no_decodable_frame_is_corrupt(video_factory, tmp_path: Path) -> None:
    src = video_factory("to-break", SCENES).path
    err = _expect(CorruptVideo, corrupt_after_header(src, tmp_path / "noise.mp4"), "no frame")
    assert err.decoded_until == 0.0


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_file_gives_what_it_has(video_factory, tmp_path, caplog, suffix) -> None:
    truth = video_factory("to-truncate", SCENES, suffix=suffix)
    cut = truncate(truth.path, tmp_path / f"half{suffix}", keep=0.5)
    info = probe(cut)  # the header still claims the full length
    assert info.duration == pytest.approx(4.0, abs=0.01)
    with caplog.at_level(logging.WARNING, logger="diffcap"), open_video(cut) as src:
        assert src.truncated_at is None
        frames = list(src.frames())
        assert src.truncated_at is not None
        assert src.truncated_at == pytest.approx(frames[-1].time)
    assert 1.0 < frames[-1].time < 3.5  # about half of 4 s
    assert [f.timestamp.exact for f in frames] == truth.frame_times[: len(frames)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("lost" in r.getMessage() and str(cut) in r.getMessage() for r in warnings)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_truncated_file_sampling_past_the_cut(video_factory, tmp_path, caplog) -> None:
    """Seeking into the missing half falls back to the last frame that exists."""
    truth = video_factory("to-truncate", SCENES, suffix=".mp4")
    cut = truncate(truth.path, tmp_path / "half.mp4", keep=0.5)
    with caplog.at_level(logging.WARNING, logger="diffcap"), open_video(cut) as src:
        got = list(src.frames_at([0.0, 1.0, 3.5, 3.9]))
        assert src.truncated_at is not None and src.truncated_at < 3.5
    assert [f.time for f in got[:2]] == [0.0, 1.0]
    assert got[2].time == got[3].time == pytest.approx(src.truncated_at)


def test_bit_rot_in_the_middle_keeps_going(video_factory, tmp_path, caplog) -> None:
    truth = video_factory("to-rot", SCENES, suffix=".mp4")
    bad = corrupt_payload(truth.path, tmp_path / "rot.mp4", 0.4, 0.6)
    with caplog.at_level(logging.WARNING, logger="diffcap"), open_video(bad) as src:
        frames = list(src.frames())
        errors = src.decode_errors
    assert frames[0].time == 0.0
    assert frames[-1].time == pytest.approx(float(truth.frame_times[-1]))  # reached the end
    if errors:  # the decoder may also conceal damage silently; when it cannot, we say so
        assert any("could not be decoded" in r.getMessage() for r in caplog.records)


def test_complete_files_are_not_flagged(video_factory) -> None:
    """No false alarm where the duration is estimated (MPEG-TS) or covers audio too."""
    for truth in (
        video_factory("ts", SCENES, suffix=".ts"),
        video_factory("mkv-audio", SCENES, suffix=".mkv", audio=True),
    ):
        with open_video(truth.path) as src:
            assert len(list(src.frames())) == truth.frame_count
            assert src.truncated_at is None and src.decode_errors == 0


def test_h264_odd_size_is_refused_by_the_writer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", [Scene(0.2)], size=(33, 21))
