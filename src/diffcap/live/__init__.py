"""Live streams captioned as they play: an HLS playlist that is still growing, an RTSP
stream, a file still being written (``diffcap caption --live SOURCE``; docs/live.md).

    from diffcap.live import LiveOptions, caption_live
    report = caption_live("http://127.0.0.1:8000/live.m3u8", Path("live.jsonl"),
                          opts=LiveOptions(duration=60), on_line=print)
"""

from diffcap.live.api import acaption_live, caption_live
from diffcap.live.options import LiveOptions
from diffcap.live.runner import LiveReport
from diffcap.live.state import LiveState, read_lines

__all__ = ["LiveOptions", "LiveReport", "LiveState", "acaption_live", "caption_live", "read_lines"]
