"""Publish a run's outputs to any filesystem fsspec reaches (``output.uri``): a local path,
NFS, ``s3://``, ``gs://``, ``az://``, ``hf://`` ... (install the fsspec driver for it, e.g.
``s3fs``).

    publish_outputs(run_dir, written, "s3://bucket/captions/panda")

After the run's outputs are rewritten from ``run.sqlite`` (exactly once, in input order), the
record shards, ``records.parquet``, ``failures.jsonl`` and ``filtered.jsonl`` are copied to
the URI under the same names, then ``_manifest.json`` (the list of files with their sizes),
then stale shards of an earlier, larger publish are removed. Read the files the manifest
names: once a publish has finished they hold every record exactly once. On filesystems with
rename (local, NFS) each file, the manifest too, goes to a temporary name first, so no file
is ever seen half written; on object stores one PUT is atomic per object. A reader running
*during* a publish may see shards of the new publish beside an older manifest (records move
between shards as more videos finish): read after the command returns. Keyframe images stay
in the run directory (``diffcap export`` copies them with the records).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import secrets
import time
from pathlib import Path
from typing import Any

from diffcap._deps import require
from diffcap.errors import ConfigError, StorageError
from diffcap.redact import redact

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"


def publish_outputs(
    run_dir: Path, written: dict[str, Any], uri: str, *, run_id: str
) -> dict[str, Any]:
    """Copy the outputs ``write_outputs`` wrote to ``uri``; returns what was published.
    A destination that holds another run's outputs (its manifest names another run id,
    say a config.yaml reused with ``--config``) is refused, never overwritten."""
    fs, root = _filesystem(uri)
    _refuse_another_run(fs, root, uri, run_id)
    names = [f"records/{s}" for s in written["shards"]]
    names += [
        n
        for n in ("records.parquet", "failures.jsonl", "filtered.jsonl")
        if (run_dir / n).is_file()
    ]
    try:
        fs.makedirs(posixpath.join(root, "records"), exist_ok=True)
        files = [_put(fs, run_dir / n, posixpath.join(root, n), n) for n in names]
        manifest = run_dir / MANIFEST
        body = {"run_id": run_id, "created": time.time(), "files": files}
        manifest.write_text(json.dumps(body, indent=1))
        _put(fs, manifest, posixpath.join(root, MANIFEST), MANIFEST)
        _remove_stale(fs, root, set(written["shards"]))  # after the manifest that drops them
    except Exception as exc:  # any driver's error (s3fs, gcsfs, ...): a fault of the world
        raise StorageError(
            redact(f"{uri}: cannot publish the outputs ({type(exc).__name__}: {exc})"),
            hint="check the URI, credentials and space, then rerun: the run directory keeps "
            "everything",
        ) from exc
    log.info("published %d files to %s", len(files), redact(uri))
    return {"uri": redact(uri), "files": len(files)}


def _refuse_another_run(fs: Any, root: str, uri: str, run_id: str) -> None:
    try:
        with fs.open(posixpath.join(root, MANIFEST)) as f:
            owner = json.loads(f.read()).get("run_id")
    except FileNotFoundError:
        return
    except Exception as exc:  # unreadable: say so rather than overwrite it
        raise StorageError(
            redact(f"{uri}: cannot read its {MANIFEST} ({type(exc).__name__}: {exc})")
        ) from exc
    if owner is not None and owner != run_id:
        raise ConfigError(
            redact(f"{uri} holds the published outputs of another run ({owner})"),
            hint="give this run its own --output-uri (a config.yaml reused with --config "
            "carries the old one), or remove that folder",
        )


def check_uri(uri: str | None, run_id: str) -> None:
    """Fail before the run, not after it: an unknown protocol, a missing driver, or a
    destination that holds another run's outputs."""
    if uri:
        fs, root = _filesystem(uri)
        _refuse_another_run(fs, root, uri, run_id)


def _filesystem(uri: str) -> tuple[Any, str]:
    fsspec = require("fsspec", extra="cloud", purpose="output.uri")
    try:
        fs, root = fsspec.core.url_to_fs(uri)
    except (ValueError, ImportError) as exc:  # unknown protocol / its driver not installed
        raise ConfigError(
            redact(f"output.uri {uri}: {exc}"),
            hint="a local path or an fsspec URL whose driver is installed (s3fs for s3://)",
        ) from exc
    return fs, root.rstrip("/")


def _local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _put(fs: Any, local: Path, remote: str, name: str) -> dict[str, Any]:
    if _local(fs):  # rename is atomic here: a reader never sees half a file
        tmp = f"{remote}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fs.put_file(str(local), tmp)
        fs.mv(tmp, remote)
    else:  # one PUT is atomic per object on object stores
        fs.put_file(str(local), remote)
    return {"name": name, "bytes": local.stat().st_size}


def _remove_stale(fs: Any, root: str, shards: set[str]) -> None:
    """Shards an earlier, larger publish left would duplicate records: remove them."""
    for path in fs.glob(posixpath.join(root, "records", "records-*.jsonl")):
        if posixpath.basename(path) not in shards:
            fs.rm(path)


__all__ = ["MANIFEST", "check_uri", "publish_outputs"]
