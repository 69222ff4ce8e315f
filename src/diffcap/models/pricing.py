"""Cost estimates from a price table: USD per million input and output tokens, per model.

The shipped table (``models/prices.json``) holds list prices of common OpenAI models. Extend
or override it with a JSON or YAML file of the same shape::

    {"my-model": {"input": 0.2, "output": 0.8}}

named by the ``DIFFCAP_PRICES`` environment variable, or pass ``prices=`` (a mapping or a
path) to :func:`estimate_cost` / :class:`PriceTable` / the openai backend. An unknown model
costs 0 (a local server is free) with a one-time warning.

    estimate_cost("gpt-4o-mini", prompt_tokens=1_000, completion_tokens=200)   # 0.00027
    estimate_cost("gpt-4o-mini-2024-07-18", 1_000, 200)                        # same entry
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from diffcap.errors import ConfigError

log = logging.getLogger(__name__)

ENV_VAR = "DIFFCAP_PRICES"
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_warned: set[str] = set()

PricesArg = Mapping[str, Any] | str | os.PathLike[str] | None


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


def _parse_table(data: Any, source: str) -> dict[str, Price]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"price table {source} must map model names to {{input, output}}")
    table: dict[str, Price] = {}
    for model, entry in data.items():
        if str(model).startswith("_"):  # comments
            continue
        try:
            table[str(model)] = Price(float(entry["input"]), float(entry["output"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"price table {source}: entry '{model}' needs numeric 'input' and 'output' "
                f"(USD per million tokens), got {entry!r}"
            ) from exc
    return table


def load_price_file(path: str | os.PathLike[str]) -> dict[str, Price]:
    """Read a JSON or YAML price table."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read price table {p}: {exc.strerror or exc}",
            hint=f"fix the path (set by {ENV_VAR} or prices=)",
        ) from exc
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"price table {p} is not valid JSON/YAML: {exc}") from exc
    return _parse_table(data, str(p))


def default_prices() -> dict[str, Price]:
    """The shipped table, updated by the file named in ``DIFFCAP_PRICES`` if set."""
    res = resources.files("diffcap.models") / "prices.json"
    table = _parse_table(json.loads(res.read_text(encoding="utf-8")), "prices.json")
    if os.environ.get(ENV_VAR):
        table.update(load_price_file(os.environ[ENV_VAR]))
    return table


class PriceTable:
    """Model -> :class:`Price`, with lookups tolerant of date suffixes and provider prefixes."""

    def __init__(self, prices: PricesArg = None) -> None:
        self.table = default_prices()
        if isinstance(prices, Mapping):
            self.table.update(_parse_table(prices, "prices="))
        elif prices is not None:
            self.table.update(load_price_file(prices))

    def lookup(self, model: str) -> Price | None:
        """Exact name, then without ``provider/`` and date suffix, then the longest known
        prefix followed by ``-`` (``gpt-4o-mini-audio`` -> ``gpt-4o-mini``)."""
        for name in (model, model.rsplit("/", 1)[-1]):
            if name in self.table:
                return self.table[name]
            base = _DATE_SUFFIX.sub("", name)
            if base in self.table:
                return self.table[base]
        name = _DATE_SUFFIX.sub("", model.rsplit("/", 1)[-1])
        prefixes = [k for k in self.table if name.startswith(k + "-")]
        return self.table[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.lookup(model)
        if price is None:
            if model not in _warned:
                _warned.add(model)
                log.warning(
                    "no price known for model '%s': its cost is counted as 0 "
                    "(add it to a price table named by %s)",
                    model,
                    ENV_VAR,
                )
            return 0.0
        return price.cost(prompt_tokens, completion_tokens)


_default_table: PriceTable | None = None
_default_env: str | None = None


def estimate_cost(
    model: str, prompt_tokens: int, completion_tokens: int, prices: PricesArg = None
) -> float:
    """Estimated USD cost of one or more requests to ``model``."""
    global _default_table, _default_env
    if prices is not None:
        return PriceTable(prices).cost(model, prompt_tokens, completion_tokens)
    env = os.environ.get(ENV_VAR)
    if _default_table is None or env != _default_env:  # re-read when the variable changes
        _default_table, _default_env = PriceTable(), env
    return _default_table.cost(model, prompt_tokens, completion_tokens)
