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

log = logging.getLogger(__name__)

#: Seconds the hub gets to answer the reachability check.
REACH_TIMEOUT_S = 3.0

OFFLINE_ROUTES = (
    "offline routes: download the model where the hub is reachable (`hf download {model} "
    "--local-dir DIR`), copy DIR here and pass --backend transformers --model DIR; or serve "
    "any model with an OpenAI-compatible server (vLLM, Ollama, `transformers serve`) and "
    "pass --api-base URL; or try the pipeline with a tiny random model: `diffcap models "
    "--build-tiny DIR`, then --backend transformers --model DIR. With an account: set "
    "OPENAI_API_KEY (or DIFFCAP_API_KEY, or pass --api-key)"
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


def check_hub_model(model: str) -> None:
    """Fail fast (ModelUnavailable, with the offline routes) unless ``model`` is cached or
    the hub can serve it now."""
    if is_cached(model):
        return
    routes = OFFLINE_ROUTES.format(model=model)
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
            hint="run `hf auth login` (or set HF_TOKEN) after accepting its terms",
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
