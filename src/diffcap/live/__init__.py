"""Live streams captioned as they play: an HLS playlist that is still growing, an RTSP
stream, a file still being written (``diffcap caption --live SOURCE``; docs/live.md).

    from diffcap.live import LiveOptions, caption_live
    report = caption_live("http://127.0.0.1:8000/live.m3u8", Path("live.jsonl"),
                          opts=LiveOptions(duration=60), on_line=print)

Names are imported lazily: the viewer reads live records files without loading PyAV.
"""

from __future__ import annotations

from diffcap.lazyattr import lazy_attributes

_NAMES = {
    "LiveOptions": "diffcap.live.options",
    "LiveReport": "diffcap.live.runner",
    "LiveState": "diffcap.io.livefile",
    "acaption_live": "diffcap.live.api",
    "caption_live": "diffcap.live.api",
    "read_lines": "diffcap.io.livefile",
    "record_from_lines": "diffcap.io.livefile",
}

__all__ = sorted(_NAMES)


__getattr__ = lazy_attributes(__name__, _NAMES, globals())
