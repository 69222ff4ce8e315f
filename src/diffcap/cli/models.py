"""``diffcap models``: which model backends this machine can use, and how to fix the rest.

    diffcap models                               # every backend: installed, cached, reachable
    diffcap models --api-base http://127.0.0.1:8000/v1 --json
    diffcap models --build-tiny models/tiny      # a tiny random LLaVA for offline trials

For each backend: its default model, whether its packages are installed, whether the model
is cached (in-process models) or the endpoint answers (servers), what ``--backend auto``
(the default) picks here, and the exact command that fixes each missing piece.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import click

from diffcap.cli.options import config_from_params, model_options
from diffcap.config import ModelConfig


def _installed(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _openai_row(m: ModelConfig) -> dict[str, Any]:
    from diffcap.models.openai_backend import DEFAULT_MODEL, OpenAIBackend  # lazy: start-up

    key = bool(m.api_key or os.environ.get("OPENAI_API_KEY") or os.environ.get("DIFFCAP_API_KEY"))
    row: dict[str, Any] = {
        "backend": "openai",
        "model": m.model or DEFAULT_MODEL,
        "endpoint": m.api_base or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
        "key": key,
        "fix": [],
    }
    if not key and not m.api_base:
        row["fix"].append("export OPENAI_API_KEY=sk-... (or pass --api-base URL of a server)")
        row["reachable"] = None
        return row
    try:
        OpenAIBackend(m.model_copy(update={"backend": "openai"})).preflight()
        row["reachable"] = True
    except Exception as exc:  # a closed port, no DNS: say so, never crash the report
        row["reachable"] = False
        row["fix"].append(f"start the server or fix --api-base ({exc})")
    return row


def _transformers_row(m: ModelConfig) -> dict[str, Any]:
    from diffcap.models.hub import hub_status, offline_routes  # lazy: start-up
    from diffcap.models.transformers_backend import DEFAULT_MODEL  # lazy: start-up

    model = m.model or DEFAULT_MODEL
    missing = _installed("torch", "transformers")
    row: dict[str, Any] = {"backend": "transformers", "model": model, "missing": missing}
    row["fix"] = ["pip install 'diffcap[local]'"] if missing else []
    if Path(model).expanduser().is_dir():
        row.update(local_folder=True, cached=(Path(model).expanduser() / "config.json").is_file())
    elif not missing:
        row.update(hub_status(model))
        if not row["cached"] and not row["reachable"]:
            row["fix"].append(offline_routes(model))
    return row


def _line(row: dict[str, Any]) -> str:
    facts = []
    if row["backend"] == "openai":
        facts.append(f"key {'set' if row['key'] else 'not set'}")
        state = {True: "reachable", False: "unreachable", None: "not checked"}[row["reachable"]]
        facts.append(f"{row['endpoint']} {state}")
    else:
        facts.append("installed" if not row["missing"] else f"missing {', '.join(row['missing'])}")
        if "cached" in row:
            facts.append("cached" if row["cached"] else "not cached")
        if "reachable" in row and not row.get("cached"):
            hub = (
                "offline (HF_HUB_OFFLINE)"
                if row["offline"]
                else ("reachable" if row["reachable"] else "unreachable")
            )
            facts.append(f"hub {hub}")
    text = f"{row['backend']:<13} {row['model']:<45} " + "; ".join(facts)
    return text + "".join(f"\n{'':14}fix: {f}" for f in row["fix"])


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--build-tiny",
    type=click.Path(file_okay=False, path_type=Path),
    help="Build a tiny random-weight LLaVA into this folder (offline trials; gibberish).",
)
@model_options
def models(as_json: bool, build_tiny: Path | None, **params: Any) -> None:
    """Model backends on this machine: installed, cached, reachable, and how to fix each."""
    if build_tiny is not None:
        from diffcap.models.tiny import build_tiny_llava  # lazy: start-up

        out = build_tiny_llava(build_tiny)
        click.echo(f"tiny LLaVA in {out}: --backend transformers --model {out}")
        return
    from diffcap.models.registry import resolve_backend_name  # lazy: start-up

    m = config_from_params(params).model
    rows = [_openai_row(m), _transformers_row(m)]
    auto = resolve_backend_name(m.model_copy(update={"backend": "auto"}))
    if as_json:
        click.echo(json.dumps({"auto": auto, "backends": rows}, indent=2))
        return
    for row in rows:
        click.echo(_line(row))
    click.echo(f"--backend auto (the default) uses: {auto}")
