"""diffcap's frame conversions leave nothing behind that a forked child cannot free.

From PyAV 18.1.1 on, ``VideoFrame.reformat`` / ``to_ndarray(format=...)`` keep a swscale
context per thread in a ``threading.local``, with swscale's slice threads on. A process whose
other thread then starts a subprocess with a ``preexec_fn`` (Ray does, starting its workers)
or forks hangs for good: the child frees that context while clearing the other threads'
state, in ``pthread_cond_destroy``. Every conversion of diffcap's goes through
``diffcap.video.lazyframe.convert`` (its own single-threaded contexts) instead; these tests
run each conversion path on a thread that stays alive, then fork.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from diffcap.video.synth import Scene, write_video

_CHILD = """
import json, subprocess, sys, threading
import av
import av.video.frame
from diffcap.config import KeyframeConfig
from diffcap.keyframes import extract_keyframes
from diffcap.video.motion import gray_small
from diffcap.video.pyav import PyAVSource

clip, out = sys.argv[1], sys.argv[2]
ready, stop, found = threading.Event(), threading.Event(), []


def work():
    # every conversion path: the sampling pass (thumbnails, cut signal, camera motion,
    # JPEGs), eager frames, lazy full frames, and the optical-flow picture
    extract_keyframes(clip, KeyframeConfig(embedder="weightless", interval=0.5), out_dir=out)
    with PyAVSource(clip) as src:
        frame = next(iter(src.frames_at([0.5])))
        lazy = next(iter(src.lazy_frames_at([1.0])))
        lazy.image
    with av.open(clip) as container:
        gray_small(next(container.decode(video=0)))
    pyav_cache = getattr(av.video.frame, "_thread_local", None)  # PyAV >= 18.1.1
    found.append(pyav_cache is not None and hasattr(pyav_cache, "reformatter"))
    found.append(list(frame.image.shape))
    ready.set()
    stop.wait()  # stays alive, with its thread-local state, while the main thread forks


threading.Thread(target=work, daemon=True).start()
ready.wait()
subprocess.run(["true"], preexec_fn=lambda: None, check=True)  # Python runs in the child
print(json.dumps({"pyav_thread_context": found[0], "frame": found[1]}))
"""


def test_a_fork_after_conversions_on_a_live_thread_does_not_hang(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", [Scene(1.0), Scene(1.0)], size=(160, 90), fps=10)
    proc = subprocess.Popen(  # its own process group: a hung fork is killed with it
        [sys.executable, "-c", _CHILD, str(clip.path), str(tmp_path / "kf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=120)  # the bug: the fork never finishes
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError("the fork after the conversions hung (killed after 120 s)") from None
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"pyav_thread_context": False, "frame": [90, 160, 3]}
