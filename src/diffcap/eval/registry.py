"""Benchmarks by name (each in its own module, imported when asked for).

get_benchmark("dream1k")     # a Dream1K instance; ConfigError for an unknown name
get_benchmark("mvbench", BenchSettings(official_quirks=True))
"""

from __future__ import annotations

import importlib

from diffcap.errors import ConfigError
from diffcap.eval.base import Benchmark, BenchSettings

#: name -> "module:class" under diffcap.eval
BENCHMARKS: dict[str, str] = {
    "dream1k": "dream1k:Dream1K",
    "vdc": "vdc:VDC",
    "tempcompass": "tempcompass:TempCompass",
    "mvbench": "mvbench:MVBench",
    "videomme": "videomme:VideoMME",
}


def get_benchmark(name: str, settings: BenchSettings | None = None) -> Benchmark:
    target = BENCHMARKS.get(name)
    if target is None:
        raise ConfigError(f"unknown benchmark {name!r}", hint=f"one of {', '.join(BENCHMARKS)}")
    module, cls = target.split(":")
    bench: Benchmark = getattr(importlib.import_module(f"diffcap.eval.{module}"), cls)(settings)
    return bench
