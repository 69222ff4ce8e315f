"""Byte-for-byte golden test: one small run through the real CLI, compared with tests/golden/.

What it runs (in-process through ``diffcap.cli.main``, as ``support.cli`` does, so the exit
codes are the CLI's own), on four generated inputs (PyAV, 64x48, 10 fps): ``a.mp4`` (4.5 s,
three shots), ``b.mp4`` (3 s, two shots), ``short.mp4`` (1 s: filtered by
``--min-duration 2``) and ``broken.mp4`` (text: fails at prepare, ``not_a_video``). The
model is the loopback OpenAI-compatible :class:`support.fault_server.FaultServer`, whose
answer is the prompt's first six words plus a digest of the whole request body (so any change
in a prompt, an image or an option changes the captions); keyframes use the weightless
embedder. The commands, in order (see :func:`commands`):

- ``diffcap run`` (workers 1, concurrency 1) -> exit 1 (one failed, one filtered), then
  ``diffcap status --json``, the same ``run`` again (resume: all cached) and ``status``;
- ``diffcap caption a.mp4 b.mp4 --mode fast`` (caption JSONL + its run directory);
- ``diffcap keyframes a.mp4 broken.mp4`` -> exit 1;
- ``diffcap export RUN --format F`` for every format (jsonl, sharegpt4video, parquet, llava,
  grid, t2v, llamafactory, swift, qwenvl, chapters, clips) and one export of the caption
  JSONL with ``--absolute-paths``;
- two refusals: an unknown export format (exit 2) and ``--backend openai`` without a key or
  URL (exit 3).

What is compared: every file the commands wrote (records shards, ``failures.jsonl``,
``filtered.jsonl``, ``keyframes.json``, the caption JSONL, every export), byte for byte after
the normalization below; Parquet files as their schema and rows in canonical JSON; images
(keyframes, export images) by SHA-256; the exit code of each command; the stdout of
``status --json``; the requests the server received (sorted, bodies by digest). Not
compared: ``run.sqlite`` and ``.lock`` (the store's private state), ``config.yaml`` (saved
settings, not output) and the generated input videos themselves (checked first by hash: when
PyAV/x264 write other bytes the comparison is meaningless and the test says so).

Normalization (only genuinely volatile text, see :func:`normalize`): the temporary root path
-> ``<ROOT>``; loopback ports -> ``<PORT>``; ISO-8601 date-times (``created``) -> ``<TIME>``;
the ``diffcap_version`` value -> ``<VERSION>``; the ``wall_s`` and ``videos_per_s`` numbers
-> ``<VOLATILE>``.

Regenerate deliberately: ``PYTHONPATH=src python scripts/regen_golden.py``. Only do so when
a change of output is intended, and say what changed in CHANGELOG.md; a refactoring (issue
20) must pass this test with the reference outputs unchanged.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from diffcap.video.synth import Scene, write_video
from support.cli import diffcap
from support.fault_server import FaultServer, prompt_text

GOLDEN = Path(__file__).resolve().parent / "golden"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
#: Files of a run directory that are private state or settings, not outputs (see docstring).
SKIPPED_NAMES = ("run.sqlite", ".lock", "config.yaml")
EXPORTS = (
    ("jsonl", "records.jsonl"),
    ("sharegpt4video", "sharegpt4video.jsonl"),
    ("parquet", "records.parquet"),
    ("llava", "llava.json"),
    ("grid", "grid.json"),
    ("t2v", "t2v.json"),
    ("llamafactory", "llamafactory.json"),
    ("swift", "swift.jsonl"),
    ("qwenvl", "qwenvl.jsonl"),
    ("chapters", "chapters"),
)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")
_PORT = re.compile(r"(127\.0\.0\.1|localhost):\d+")
_VERSION = re.compile(r'(\\?"diffcap_version\\?":\s*\\?")[^"\\]*')
_DURATIONS = re.compile(r'("(?:wall_s|videos_per_s)":\s*)-?[0-9][0-9.eE+-]*')


def normalize(text: str, root: Path) -> str:
    """The documented normalization of volatile text (and nothing else)."""
    for path in sorted({str(root.resolve()), str(root)}, key=len, reverse=True):
        text = text.replace(path, "<ROOT>")
    text = _PORT.sub(r"\1:<PORT>", text)
    text = _TIME.sub("<TIME>", text)
    text = _VERSION.sub(r"\1<VERSION>", text)
    return _DURATIONS.sub(r"\1<VOLATILE>", text)


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_inputs(videos: Path) -> None:
    videos.mkdir(parents=True)
    small = {"size": (64, 48), "fps": 10}
    write_video(
        videos / "a.mp4",
        [
            Scene(1.5, layout="solid", hue=0.1),
            Scene(1.5, layout="checker", hue=0.5),
            Scene(1.5, layout="rings", hue=0.8),
        ],
        **small,
    )
    write_video(
        videos / "b.mp4",
        [Scene(1.5, layout="hstripes", hue=0.3), Scene(1.5, layout="gradient", hue=0.6)],
        **small,
    )
    write_video(videos / "short.mp4", [Scene(1.0, layout="vstripes", hue=0.9)], **small)
    (videos / "broken.mp4").write_text("this is not a video\n")


#: The commands, in order: (name, arguments). ``{x}`` tokens are filled in by
#: :func:`commands`; ``{MODEL}``, ``{FRAMES}`` and ``{ENGINE}`` stand for several arguments.
SCRIPT = (
    ("run", "run {v} --out {run} {MODEL} {FRAMES} {ENGINE} --min-duration 2"),
    ("status", "status {run} --json"),
    ("run-again", "run {v} --out {run} {MODEL} {FRAMES} {ENGINE} --min-duration 2"),
    ("status-again", "status {run} --json"),
    ("caption", "caption {v}/a.mp4 {v}/b.mp4 --out {root}/cap/captions.jsonl --mode fast "
                "{MODEL} {FRAMES}"),
    ("keyframes", "keyframes {v}/a.mp4 {v}/broken.mp4 --out {root}/kf {FRAMES}"),
    *((f"export-{fmt}", f"export {{run}} --format {fmt} --out {{root}}/exp/{name}")
      for fmt, name in EXPORTS),
    ("export-clips", "export {run} --format clips --out {root}/exp/clips.jsonl --window 2 "
                     "--stride 1 {MODEL}"),
    ("export-caption-jsonl", "export {root}/cap/captions.jsonl --format llava --tasks fast,slide "
                             "--absolute-paths --out {root}/exp-cap/llava.json"),
    ("export-bad-format", "export {run} --format nope --out {root}/exp/x"),
    ("caption-no-model", "caption {v}/a.mp4 --out {root}/nomodel/c.jsonl --backend openai"),
)  # fmt: skip


def commands(root: Path, api_base: str) -> list[tuple[str, list[str]]]:
    """:data:`SCRIPT` with its paths and argument groups filled in."""
    groups = {
        "{MODEL}": ["--api-base", api_base, "--model", "tiny", "--api-key", "test"],
        "{FRAMES}": ["--embedder", "weightless", "--interval", "1"],
        "{ENGINE}": ["--workers", "1", "--concurrency", "1", "--model-max-retries", "0"],
    }
    paths = {"root": str(root), "v": str(root / "videos"), "run": str(root / "run")}
    out = []
    for name, line in SCRIPT:
        args: list[str] = []
        for token in line.split():  # split before filling in: paths may hold spaces
            args += groups.get(token) or [token.format(**paths)]
        out.append((name, args))
    return out


@contextlib.contextmanager
def _no_model_env() -> Iterator[None]:
    """No API key or base URL from the caller's environment (the exit-3 case needs none)."""
    names = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DIFFCAP_API_KEY")
    saved = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _reply_for(root: Path) -> Callable[[Any], str]:
    def reply(body: Any) -> str:
        blob = normalize(json.dumps(body, sort_keys=True), root).encode()
        words = " ".join(prompt_text(body).split()[:6])
        return f"{words} [{hashlib.sha256(blob).hexdigest()[:10]}]"

    return reply


def _request_summary(srv: FaultServer, root: Path) -> str:
    seen = []
    for r in srv.requests:
        body = r.body if isinstance(r.body, dict) else {}
        blob = normalize(json.dumps(body, sort_keys=True), root).encode()
        seen.append(
            {
                "path": r.path,
                "images": r.images,
                "options": {k: v for k, v in body.items() if k != "messages"},
                "prompt": normalize(r.prompt, root),
                "body_sha256": hashlib.sha256(blob).hexdigest(),
            }
        )
    return canonical(sorted(seen, key=lambda s: json.dumps(s, sort_keys=True)))


def run_commands(root: Path) -> dict[str, str]:
    """Run every command; the exit codes, status stdouts and requests, as golden entries."""
    out: dict[str, str] = {}
    codes = []
    with _no_model_env(), FaultServer(reply=_reply_for(root)) as srv:
        for name, args in commands(root, srv.base_url):
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                code = diffcap(*args)
            codes.append({"name": name, "args": [normalize(a, root) for a in args], "exit": code})
            if name.startswith("status"):
                out[f"stdout/{name}.json"] = normalize(stdout.getvalue(), root)
        out["requests.json"] = _request_summary(srv, root)
    out["exit_codes.json"] = canonical(codes)
    return out


def parquet_canonical(path: Path) -> str:
    table = pq.read_table(path)
    schema = [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in table.schema]
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    return canonical({"schema": schema, "schema_metadata": meta, "rows": table.to_pylist()})


def collect_outputs(root: Path) -> dict[str, str]:
    """Every output file under ``root`` (inputs and private state aside) as golden entries."""
    out: dict[str, str] = {}
    images: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("videos/") or path.name.startswith(SKIPPED_NAMES):
            continue
        data = path.read_bytes()
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images[rel] = hashlib.sha256(data).hexdigest()
        elif data[:4] == b"PAR1":
            out[f"{rel}.canonical.json"] = normalize(parquet_canonical(path), root)
        else:
            try:
                out[rel] = normalize(data.decode("utf-8"), root)
            except UnicodeDecodeError:
                images[rel] = hashlib.sha256(data).hexdigest()
    out["image_sha256.json"] = canonical(images)
    return out


def produce(root: Path) -> dict[str, str]:
    """Generate the inputs under ``root``, run the commands; every golden entry by name."""
    write_inputs(root / "videos")
    inputs = {p.name: sha256(p) for p in sorted((root / "videos").iterdir())}
    out = {"inputs.json": canonical(inputs)}
    out.update(run_commands(root))
    out.update({f"outputs/{k}": v for k, v in collect_outputs(root).items()})
    return out


def read_golden(folder: Path = GOLDEN) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write_golden(entries: dict[str, str], folder: Path = GOLDEN) -> None:
    """Replace the reference outputs in ``folder`` with ``entries``."""
    for old in sorted(folder.rglob("*"), reverse=True) if folder.exists() else []:
        old.unlink() if old.is_file() else old.rmdir()
    for name, text in entries.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")


def describe_mismatch(expected: dict[str, str], actual: dict[str, str]) -> str:
    names = sorted(expected.keys() | actual.keys())
    bad = [n for n in names if expected.get(n) != actual.get(n)]
    lines = [f"{len(bad)} golden entries differ: {bad}"]
    for name in bad[:6]:
        diff = difflib.unified_diff(
            (expected.get(name) or "").splitlines(),
            (actual.get(name) or "").splitlines(),
            f"golden/{name}" if name in expected else "(missing in golden)",
            "this run" if name in actual else "(not written by this run)",
            lineterm="",
            n=1,
        )
        lines += list(diff)[:40]
    return "\n".join(lines)


def test_outputs_and_exit_codes_match_golden(tmp_path: Path) -> None:
    expected = read_golden()
    assert expected, f"no reference outputs in {GOLDEN}: run scripts/regen_golden.py"
    actual = produce(tmp_path / "golden-run")
    assert actual["inputs.json"] == expected["inputs.json"], (
        "the generated input videos differ from the ones the reference was made from (a "
        "PyAV/FFmpeg/x264 change, not a diffcap one): outputs cannot be compared; regenerate "
        "the reference with the unchanged code first"
    )
    if actual != expected:
        hint = (
            "\n(images, and the request digests in the captions, also depend on the Pillow/"
            "libjpeg build: after an upgrade of those, regenerate with the unchanged code first)"
        )
        pytest.fail(describe_mismatch(expected, actual) + hint, pytrace=False)
