"""diffcap: dense, temporally precise video captions at scale.

    from diffcap import open_video
    with open_video("clip.mp4") as src:
        print(src.info().duration)
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger("diffcap").addHandler(logging.NullHandler())

__all__ = ["__version__"]
