"""What every config section shares: the strict base model and the bounds that catch typos.

class MySection(Section):
    size: int = Field(8, ge=1, le=MAX_WORKERS, description="...")
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

#: Upper bounds that catch typos (``--concurrency 80000``) without limiting real runs.
MAX_CONCURRENCY = 4096
MAX_WORKERS = 512
#: Smallest keyframes.interval (seconds): a frame of a 1000 fps video. Smaller values only
#: repeat the same frames (and ``1e-9`` once planned 10^12 candidates); see also
#: ``diffcap.keyframes.plan.MAX_CANDIDATES``, the per-video cap on window / interval.
MIN_INTERVAL = 0.001


class Section(BaseModel):
    """A config section: unknown keys are errors that name the key; assignments are checked."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
