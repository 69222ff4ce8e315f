"""The run directory's life before its first real run, and the identity of its model.

- :class:`NewRunDir`: a run directory this invocation created is removed again when the run
  fails before its pre-flight passed (a closed port, a bad setting): a failed first try
  leaves no ``<stem>.run/`` behind, and the next real run starts clean.
- :func:`check_model_identity`: the fingerprints of the run's local models
  (:mod:`diffcap.models.identity`) are kept in the run DB; a rerun whose model folder holds
  other files (retrained into the same folder) says so. Its requests miss the cache (the
  key holds the fingerprint), so no old answer is replayed; done videos keep their records.

    new_dir = NewRunDir(run_dir)
    with new_dir:
        ...                    # set new_dir.started = True once the pre-flight passed
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

from diffcap.config import RunConfig

log = logging.getLogger(__name__)


class NewRunDir:
    """Removes ``run_dir`` on an exception before ``started`` when this invocation made it
    (it did not exist, or was an empty folder: then only its contents go)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.existed = run_dir.exists()
        self.was_empty = self.existed and run_dir.is_dir() and not any(run_dir.iterdir())
        self.started = False

    def __enter__(self) -> NewRunDir:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or self.started or (self.existed and not self.was_empty):
            return
        if not isinstance(exc, Exception):  # Ctrl-C: leave things as they are
            return
        try:
            if self.existed:
                for child in self.run_dir.iterdir():
                    _remove(child)
            else:
                shutil.rmtree(self.run_dir)
        except OSError as err:  # a read-only or vanished folder: nothing more to do
            log.debug("could not remove %s after a failed pre-flight: %s", self.run_dir, err)
        else:
            log.debug("removed %s: the run failed before its pre-flight passed", self.run_dir)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def check_model_identity(store: Any, run_dir: Path, cfg: RunConfig) -> dict[str, str]:
    """Store the fingerprints of the run's local models; warn when one changed since the
    previous run of ``run_dir``. Returns the current fingerprints."""
    from diffcap.models.identity import model_identities  # lazy: start-up (keyframes)

    current = model_identities(cfg.model.model, cfg.summary.model)
    previous = store.get_meta("model_identity") or {}
    changed = sorted(m for m, fp in current.items() if previous.get(m) not in (None, fp))
    if changed:
        log.warning(
            "%s: the model at %s changed since the previous run (retrained?): its answers "
            "are asked again, not replayed; videos already done keep their old records "
            "(use a new --out to caption everything with the new model)",
            run_dir,
            ", ".join(changed),
        )
    if current != previous:
        store.set_meta("model_identity", current)
    return current


__all__ = ["NewRunDir", "check_model_identity"]
