"""Benchmarks of caption quality (DREAM-1K/AutoDQ, VDC/VDCscore) and video understanding
(TempCompass, MVBench, Video-MME), run as stages over the engine (see docs/eval.md).

    from diffcap.eval import EvalSpec, run_eval
    report = run_eval(EvalSpec("dream1k", Path("DREAM-1k.jsonl"), Path("evals/d"),
                               captions=Path("runs/dream"), judge_model="gpt-4o"), cfg)
"""

from diffcap.eval.registry import BENCHMARKS, get_benchmark
from diffcap.eval.run import EvalReport, EvalSpec, run_eval

__all__ = ["BENCHMARKS", "EvalReport", "EvalSpec", "get_benchmark", "run_eval"]
