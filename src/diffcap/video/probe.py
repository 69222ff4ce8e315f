"""Opening a file safely and describing its video stream (what ``diffcap probe`` prints).

Every way a file can be bad becomes a typed :mod:`diffcap.errors` error with a one-line
message; nothing here decodes more than the first frame unless asked to count frames.

    from diffcap.video import probe
    info = probe("clip.mp4")            # VideoInfo
    info.to_json()["fps"]               # '30000/1001'
"""

from __future__ import annotations

import logging
from fractions import Fraction
from itertools import islice
from pathlib import Path

import av
import numpy as np

from diffcap.errors import (
    CorruptVideo,
    EmptyFile,
    FrameTooLarge,
    NotAFile,
    NotAVideo,
    NoVideoStream,
    UnsupportedCodec,
    VideoNotFound,
    VideoPermissionDenied,
)
from diffcap.timeline import VideoInfo

log = logging.getLogger(__name__)

#: Leading bytes of container formats: a file that starts like a video but will not open is
#: damaged (CorruptVideo), anything else is simply not a video (NotAVideo).
_MAGIC = (
    (4, b"ftyp"),  # MP4 / MOV / 3GP
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
)

#: Demuxers that read still images; a single picture is not a video (animated GIFs are).
_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe")

#: Packets looked at to decide whether the frame rate is variable (and, when it is, to
#: measure its average).
VFR_SCAN_PACKETS = 300
#: Largest denominator of a measured average frame rate (NTSC's 30000/1001 fits).
RATE_DENOMINATOR = 1001


def check_path(path: str | Path) -> Path:
    """Raise VideoNotFound / NotAFile / EmptyFile before FFmpeg gets a chance to be vague."""
    p = Path(path)
    if not p.exists():
        raise VideoNotFound(p, "no such file", hint="check the path (globs are not expanded)")
    if not p.is_file():
        raise NotAFile(p, "is a directory, not a video file", hint="pass the video files in it")
    if p.stat().st_size == 0:
        raise EmptyFile(p, "file is empty (0 bytes)", hint="re-download or re-export it")
    return p


def _looks_like_video(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(189)
    if len(head) == 189 and head[0] == head[188] == 0x47:  # MPEG-TS sync bytes
        return True
    return any(head[off : off + len(magic)] == magic for off, magic in _MAGIC)


def open_container(path: Path) -> av.container.InputContainer:
    """``av.open`` with FFmpeg's errors turned into diffcap's."""
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        if _looks_like_video(path):
            raise CorruptVideo(
                path,
                f"damaged or truncated container, cannot be opened ({exc.strerror})",
                decoded_until=None,
                hint="re-download the file; an MP4 cut short loses its index (moov)",
            ) from exc
        raise NotAVideo(
            path,
            "not a video file (FFmpeg recognises no container format)",
            hint="check that this is a video file",
        ) from exc
    except av.error.PermissionError as exc:
        raise VideoPermissionDenied(
            path, "permission denied", hint="check the file's permissions, then rerun"
        ) from exc
    except av.error.FFmpegError as exc:
        raise NotAVideo(path, f"cannot be opened by FFmpeg: {exc.strerror}") from exc


def select_stream(container: av.container.InputContainer, path: Path) -> av.video.VideoStream:
    """The first real video stream (cover art is skipped), checked for a usable decoder."""
    names = container.format.name.split(",")
    if any(n in _IMAGE_FORMATS for n in names):
        raise NotAVideo(
            path,
            f"a still image ({names[0]}), not a video",
            hint="diffcap reads videos; use an image tool for pictures",
        )
    attached = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams.video if not (s.disposition & attached)]
    if not videos:
        kinds: list[str] = sorted({str(s.type) for s in container.streams}) or ["no"]
        raise NoVideoStream(
            path,
            f"no video stream ({', '.join(kinds)} streams only)",
            hint="an audio-only file cannot be captioned",
        )
    stream = videos[0]
    ctx = stream.codec_context
    if ctx is None or ctx.codec is None or not ctx.is_decoder:
        raise UnsupportedCodec(
            path,
            "video codec has no decoder in this FFmpeg build",
            hint="transcode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4",
        )
    for other in container.streams:
        if other is not stream:
            # Demuxing skips them entirely: cheaper reads and seeks.
            other.discard = av.stream.Discard.all
    return stream


#: Frames with more pixels than this are refused (a decoded 16000x16000 frame is 384 MB in
#: YUV and 768 MB in RGB, per frame in flight). 8K (7680x4320, 8192x4320) fits.
MAX_PIXELS = 40_000_000


def check_size(stream: av.video.VideoStream, path: Path, max_pixels: int | None) -> None:
    """Refuse, before any frame is decoded, a stream whose header declares frames of more
    than ``max_pixels`` pixels; also tell the decoder the limit, so a stream whose pictures
    grow beyond it later is not decoded either (its frames count as lost)."""
    if max_pixels is None:
        return
    ctx = stream.codec_context
    width, height = ctx.width or stream.width or 0, ctx.height or stream.height or 0
    if width * height > max_pixels:
        raise FrameTooLarge(
            path,
            f"frames are {width}x{height} ({width * height:,} pixels), over the limit of "
            f"{max_pixels:,} pixels per frame (max_pixels)",
            hint="downscale it first (ffmpeg -i IN -vf scale=3840:-2 OUT.mp4) or raise max_pixels",
        )
    ctx.options = {**ctx.options, "max_pixels": str(max_pixels)}


def container_name(container: av.container.InputContainer, path: Path) -> str:
    """``'mov,mp4,m4a,...'`` -> ``'mp4'`` for clip.mp4 (the alias that matches the suffix)."""
    names = container.format.name.split(",")
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in names else names[0]


def _tag_seconds(value: str | None) -> float | None:
    """Matroska's per-stream ``DURATION`` tag, ``'00:00:04.000000000'`` -> 4.0."""
    try:
        h, m, sec = (value or "").split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def header_duration(
    container: av.container.InputContainer, stream: av.video.VideoStream, start: float = 0.0
) -> float:
    """Duration the file claims for the video (stream, then Matroska tag, then container).

    ``start`` is the first frame's raw time: Matroska stores end times, not spans."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    claimed = _tag_seconds(stream.metadata.get("DURATION"))
    if not claimed and container.duration:
        claimed = container.duration / av.time_base
    if not claimed:
        return 0.0
    if "matroska" in container.format.name and claimed > start:
        claimed -= start
    return claimed


def expected_end(
    container: av.container.InputContainer, stream: av.video.VideoStream, start: float = 0.0
) -> tuple[float, float]:
    """(claimed duration, slack): frames ending more than ``slack`` seconds before the claimed
    duration mean the file is truncated. Container-level durations also cover audio, which
    may run on past the video, so they get more slack."""
    duration = header_duration(container, stream, start)
    step = 1 / float(stream.average_rate) if stream.average_rate else 0.1
    stream_level = bool(stream.duration) or bool(_tag_seconds(stream.metadata.get("DURATION")))
    alone = len(container.streams) == 1
    return duration, max(3 * step, 0.25 if stream_level or alone else 2.0)


def scan_packet_pts(path: Path, index: int, limit: int = VFR_SCAN_PACKETS) -> list[int]:
    """PTS of the first ``limit`` packets of stream ``index``, sorted (demux only, no decode)."""
    return scan_packets(path, index, limit)[0]


def scan_packets(path: Path, index: int, limit: int = VFR_SCAN_PACKETS) -> tuple[list[int], bool]:
    """(sorted PTS of the first ``limit`` packets of stream ``index``, whether that was the
    whole stream). Demux only, no decode."""
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams[index]
        packets = 0
        pts: list[int] = []
        try:
            # one packet more than asked: seeing it proves the scan did not reach the end
            for p in islice(container.demux(stream), limit + 1):
                if p.size == 0:  # the empty packet at the end only flushes the decoder
                    continue
                packets += 1
                if packets <= limit and p.pts is not None:
                    pts.append(p.pts)
        except av.error.FFmpegError:
            pass
    return sorted(pts), packets <= limit


def is_variable_rate(pts: list[int]) -> bool:
    """True when frame gaps differ by more than rounding (mkv's 33/34 ms is still constant)."""
    if len(pts) < 3:
        return False
    gaps = np.diff(np.asarray(pts, dtype=np.int64))
    gaps = gaps[gaps > 0]
    if gaps.size < 2:
        return False
    spread = int(gaps.max() - gaps.min())
    ordered = np.sort(gaps)  # the median (np.median would import numpy.ma: start-up time)
    middle = (float(ordered[(gaps.size - 1) // 2]) + float(ordered[gaps.size // 2])) / 2
    return spread > 1 and spread > 0.1 * middle


def measured_rate(
    pts: list[int], time_base: Fraction, duration: float, complete: bool
) -> Fraction | None:
    """Average frame rate from packet timestamps (for variable-rate streams, whose header
    rate is often just the container's default, e.g. Matroska's 30/1).

    ``complete`` (the packets are the whole stream): frames / ``duration``, the average over
    the file. Otherwise (or when the packets end well before ``duration``: a truncated file)
    the packets' frames per second of their span. Limited to a denominator of
    :data:`RATE_DENOMINATOR`, so it stays a readable fraction."""
    if len(pts) < 2:
        return None
    span = (pts[-1] - pts[0]) * time_base
    if complete and duration > 0 and span >= 0.9 * duration:
        rate = Fraction(len(pts)) / Fraction(duration)
    elif span > 0:
        rate = Fraction(len(pts) - 1) / span
    else:
        return None
    return rate.limit_denominator(RATE_DENOMINATOR)


def frame_rate(
    path: Path, stream: av.video.VideoStream, duration: float
) -> tuple[Fraction | None, bool]:
    """(average frame rate, variable?). Constant-rate streams keep the header's exact rate
    (30000/1001); variable ones get :func:`measured_rate` when it can be measured."""
    header = stream.average_rate or stream.guessed_rate
    fps = Fraction(header) if header else None
    pts, complete = scan_packets(path, stream.index)
    variable = is_variable_rate(pts)
    if variable and stream.time_base:
        measured = measured_rate(pts, Fraction(stream.time_base), duration, complete)
        if measured:
            if fps != measured:
                log.debug("%s: variable frame rate, header %s, measured %s", path, fps, measured)
            fps = measured
    return fps, variable


def count_frames(path: Path, index: int) -> int:
    """Decode the whole stream to count its frames (``--exact-count``); errors end the count."""
    n = 0
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams[index]
        stream.thread_type = "AUTO"
        try:
            for packet in container.demux(stream):
                try:
                    n += len(stream.decode(packet))
                except av.error.InvalidDataError:
                    continue
        except av.error.FFmpegError as exc:
            log.warning("%s: counting stopped early: %s", path, exc)
    return n


def build_info(
    path: Path,
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    first: av.VideoFrame,
    *,
    exact_count: bool = False,
) -> VideoInfo:
    """Describe ``stream`` from its headers plus its ``first`` decoded frame."""
    rotation = int(first.rotation or 0) % 360
    width, height = first.width, first.height
    if rotation % 180 == 90:
        width, height = height, width
    tb = stream.time_base
    start = float(first.pts * tb) if first.pts is not None and tb is not None else 0.0
    duration = header_duration(container, stream, start)
    fps, variable = frame_rate(path, stream, duration)
    count: int | None = stream.frames or None
    exact = count is not None
    if exact_count and not exact:
        count, exact = count_frames(path, stream.index), True
    elif count is None and fps and duration:
        count = round(duration * fps)
    fmt = first.format
    return VideoInfo(
        path=str(path),
        container=container_name(container, path),
        codec=stream.codec_context.codec.canonical_name,
        width=width,
        height=height,
        rotation=rotation,
        duration=round(duration, 6),
        fps=fps,
        frame_count=count,
        frame_count_exact=exact,
        variable_fps=variable,
        has_audio=bool(container.streams.audio),
        start_time=round(start, 6),
        pix_fmt=fmt.name,
        bit_depth=fmt.components[0].bits if fmt.components else None,
    )
