"""Models by Hugging Face hub id: is it cached, can the hub be reached, what to do if not.

Checked once, before any video is decoded, so an offline machine fails in seconds with the
offline routes instead of after minutes of hub retries. A model that is cached loads with no
network; one that is not is downloaded on first use (the hub's progress bars) into the
Hugging Face cache (``HF_HOME``).

    check_hub_model("llava-hf/llava-interleave-qwen-0.5b-hf")   # or ModelUnavailable
    hub_status("llava-hf/llava-interleave-qwen-0.5b-hf")        # {"cached": ..., ...}
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from typing import Any

from diffcap.errors import ModelUnavailable
from diffcap.hints import command

log = logging.getLogger(__name__)

#: Seconds the hub gets to answer the reachability check.
REACH_TIMEOUT_S = 3.0

#: The language model's offline routes: ``.format(model=..., hf=..., diffcap=...)``, or
#: :func:`offline_routes`, which names the commands as they run here.
OFFLINE_ROUTES = (
    "offline routes: download the model where the hub is reachable (`{hf} download {model} "
    "--local-dir DIR`), copy DIR here and pass --backend transformers --model DIR; or serve "
    "any model with an OpenAI-compatible server (vLLM, Ollama, `transformers serve`) and "
    "pass --api-base URL; or try the pipeline with a tiny random model: `{diffcap} models "
    "--build-tiny DIR`, then --backend transformers --model DIR. With an account: set "
    "OPENAI_API_KEY (or DIFFCAP_API_KEY, or pass --api-key)"
)


def offline_routes(model: str, template: str = OFFLINE_ROUTES) -> str:
    """``template`` for ``model``, with ``hf`` and ``diffcap`` spelled as they run here."""
    return template.format(model=model, hf=command("hf"), diffcap=command("diffcap"))


def looks_like_local_path(name: str) -> bool:
    """Whether ``--model``/``clip:NAME`` means a folder rather than a hub id (``org/name``):
    it starts with ``/ ./ ../ ~``, has more than one ``/`` (or the platform's separator), or
    its first part is a folder here (``models/tiny-llavaa`` beside ``models/``)."""
    if name.startswith(("/", "./", "../", "~", ".\\")) or name in (".", ".."):
        return True
    if os.sep != "/" and os.sep in name:
        return True
    head, sep, _ = name.partition("/")
    return bool(sep) and (name.count("/") > 1 or os.path.isdir(os.path.expanduser(head)))


def missing_folder(name: str, what: str = "model") -> ModelUnavailable | None:
    """A ``no such folder`` error when ``name`` looks like a local path that is not a folder
    (a typo must not be looked up on the hub as a model id); else None."""
    if not looks_like_local_path(name) or os.path.isdir(os.path.expanduser(name)):
        return None
    return ModelUnavailable(
        f"{what} folder not found: {name} (no such folder)",
        hint="check the path; a hub id is org/name, e.g. llava-hf/llava-interleave-qwen-0.5b-hf",
    )


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return str(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def is_cached(model: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model, "config.json"), str)


def reach(model: str, timeout_s: float = REACH_TIMEOUT_S) -> int | None:
    """HTTP status of the hub's page for ``model`` (None: the hub cannot be reached)."""
    url = f"{hub_endpoint()}/api/models/{model}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout_s):
            return 200
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError):
        return None


def check_hub_model(model: str, routes_template: str = OFFLINE_ROUTES) -> None:
    """Fail fast (ModelUnavailable, with the offline routes of ``routes_template``: the
    language model's by default) unless ``model`` is cached or the hub can serve it now.
    A ``model`` that looks like a local path but is no folder is "no such folder"."""
    bad_path = missing_folder(model)
    if bad_path is not None:
        raise bad_path
    if is_cached(model):
        return
    routes = offline_routes(model, routes_template)
    if hub_offline():
        raise ModelUnavailable(
            f"model {model!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
            hint=routes,
        )
    status = reach(model)
    if status is None:
        raise ModelUnavailable(
            f"model {model!r} is not cached and the hub ({hub_endpoint()}) cannot be reached",
            hint=routes,
        )
    if status in (401, 403):
        raise ModelUnavailable(
            f"model {model!r} needs a Hugging Face login (HTTP {status})",
            hint=offline_routes(
                model, "run `{hf} auth login` (or set HF_TOKEN) after accepting its terms"
            ),
        )
    if status == 404:
        raise ModelUnavailable(
            f"no model {model!r} on the hub ({hub_endpoint()})",
            hint="check --model (a hub id like org/name, or a local folder)",
        )
    log.warning("%s is downloaded on first use into the Hugging Face cache", model)


def hub_status(model: str) -> dict[str, Any]:
    """What ``diffcap models`` shows for a hub model: cached, offline, reachable."""
    cached = is_cached(model)
    offline = hub_offline()
    status = None if cached or offline else reach(model)
    return {"cached": cached, "offline": offline, "reachable": status == 200, "http": status}
