"""No secret leaves the process (issue 22, item 1): keys planted in every input channel
(environment, --api-key, --api-key-file, YAML, ``user:pass@`` in --api-base, and a server
that echoes them in answers and errors) are found in no file of the run directory, no
stdout/stderr, no ``status --json``, no export and no viewer page."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from diffcap.video.synth import Scene, write_video
from support.fault_server import Fault, FaultServer

# Literal values that match no key-like pattern: only the registered-secret path hides them.
ENV_KEY = "envkey-Q7x9Lp2Zr4Tt"
FLAG_KEY = "flagkey-M3n8Vb5Tq1Uu"
FILE_KEY = "filekey-P4s6Dd8Ff0Gg"
YAML_KEY = "yamlkey-H6j2Kd9Ws4Vv"
URL_PASS = "urlpass-C5f7Gh1Ye3Ww"
SECRETS = (ENV_KEY, FLAG_KEY, FILE_KEY, YAML_KEY, URL_PASS)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("secret_videos")
    for i in range(2):
        write_video(
            root / f"clip{i}.mp4",
            [Scene(1.0, hue=0.2 + 0.5 * i), Scene(1.0, hue=0.7 - 0.5 * i)],
            size=(64, 64),
            fps=10,
        )
    return root


def echo_server() -> FaultServer:
    """A server that repeats the credentials it received in every answer (as a model asked
    to "repeat the request headers" might)."""
    srv = FaultServer()

    def reply(body) -> str:
        auth = srv.requests[-1].headers.get("authorization", "")
        token = auth.split(" ", 1)[-1]
        return f"A frame. You sent {token}, ok"

    srv.reply = reply
    return srv


class Collected:
    """Everything the process let out, by where it came from."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def add(self, where: str, data: bytes | str) -> None:
        self.blobs[where] = data.encode() if isinstance(data, str) else data

    def add_tree(self, root: Path) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                self.add(str(path), path.read_bytes())

    def leaks(self) -> list[str]:
        return [
            f"{secret} in {where}"
            for where, data in self.blobs.items()
            for secret in SECRETS
            if secret.encode() in data
        ]


def diffcap(args: list[str], env: dict[str, str], out: Collected, name: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-m", "diffcap", "-v", *args],
        env=env,
        capture_output=True,
        timeout=180,
    )
    out.add(f"{name} stdout", proc.stdout)
    out.add(f"{name} stderr", proc.stderr)
    return proc.returncode


def run_args(videos: Path, run_dir: Path, base: str, *extra: str) -> list[str]:
    return [
        "run",
        str(videos),
        "--out",
        str(run_dir),
        "--backend",
        "openai",
        "--api-base",
        base,
        "--model",
        "tiny",
        "--embedder",
        "weightless",
        "--workers",
        "1",
        "--concurrency",
        "2",
        "--model-max-retries",
        "0",
        "--model-give-up-after-s",
        "0.2",
        "--no-progress",
        *extra,
    ]


def with_userinfo(base: str) -> str:
    return base.replace("http://", f"http://alice:{URL_PASS}@")


@pytest.mark.timeout(600)
def test_planted_secrets_reach_no_output(videos, tmp_path):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DIFFCAP_API_KEY": ENV_KEY,
        "DIFFCAP_LOG_DIR": str(tmp_path / "logs"),
    }
    out = Collected()
    runs = tmp_path / "runs"
    key_file = tmp_path / "key.txt"
    key_file.write_text(FILE_KEY + "\n")
    yaml_cfg = tmp_path / "cfg.yaml"
    yaml_cfg.write_text(f"model:\n  api_key: {YAML_KEY}\n")
    with echo_server() as srv:
        base = srv.base_url
        # 1. the key from the environment; one video's first answer is a 500 that echoes it
        srv.fail(Fault("status", status=500, message=f"quota over for key {ENV_KEY}"), at=0)
        diffcap(run_args(videos, runs / "env", base), env, out, "env")
        # 2. --api-key (warned about) and 3. --api-key-file
        no_env = {k: v for k, v in env.items() if k != "DIFFCAP_API_KEY"}
        diffcap(run_args(videos, runs / "flag", base, "--api-key", FLAG_KEY), no_env, out, "flag")
        args = run_args(videos, runs / "file", base, "--api-key-file", str(key_file))
        diffcap(args, no_env, out, "file")
        # 4. the key in a YAML config
        args = run_args(videos, runs / "yaml", base, "--config", str(yaml_cfg))
        diffcap(args, no_env, out, "yaml")
        # 5. user:pass@ in --api-base; the server fails every request echoing the password:
        # the breaker trips, and its message and the last fault name the endpoint
        refused = Fault("status", status=503, message=f"login alice/{URL_PASS} refused")
        srv.fail(refused, at=list(range(len(srv.requests), len(srv.requests) + 60)))
        args = run_args(videos, runs / "url", with_userinfo(base), "--model-max-retries", "3")
        code = diffcap(args, no_env, out, "url")
        assert code == 4, out.blobs["url stderr"].decode()[-2000:]  # endpoint down
        # 6. user:pass@ together with a key: refused (the key would never be sent)
        args = run_args(videos, runs / "both", with_userinfo(base), "--api-key-file", str(key_file))
        assert diffcap(args, no_env, out, "both") == 2
        assert b"Basic auth" in out.blobs["both stderr"]
        assert b"--api-key shows the key" in out.blobs["flag stderr"]
    for name in ("env", "flag", "file", "yaml", "url"):
        run_dir = runs / name
        diffcap(["status", str(run_dir), "--json"], env, out, f"status {name}")
        for fmt, suffix in (("sharegpt4video", "jsonl"), ("parquet", "parquet")):
            exported = tmp_path / "exports" / f"{name}.{suffix}"
            exported.parent.mkdir(exist_ok=True)
            args = ["export", str(run_dir), "--format", fmt, "--out", str(exported)]
            diffcap(args, env, out, f"export {name} {fmt}")
    for page in viewer_pages([runs / n for n in ("env", "flag", "file", "yaml")]):
        out.add(page[0], page[1])
    out.add_tree(runs)
    out.add_tree(tmp_path / "exports")
    if (tmp_path / "logs").exists():
        out.add_tree(tmp_path / "logs")
    # the runs did what they should: answers came back and were stored (redacted)
    assert b"[redacted]" in out.blobs[str(runs / "flag" / "records" / "records-00000.jsonl")]
    assert b"last fault" in out.blobs["url stdout"]
    assert not out.leaks(), "\n".join(out.leaks())


def viewer_pages(run_dirs: list[Path]) -> list[tuple[str, bytes]]:
    """The viewer's pages and API answers over HTTP (skipped without the web extra)."""
    try:
        from diffcap.web.data import load_runs
        from diffcap.web.server import make_server
        from diffcap.web.viewer import ViewerApp
    except ImportError:  # pragma: no cover - the web extra is not installed
        return []
    server = make_server(ViewerApp(load_runs(run_dirs)), "127.0.0.1", 0).start()
    pages = []
    try:
        u = urlsplit(server.url())
        paths = ["/", "/api/videos"] + [f"/api/videos/{i}" for i in range(8)]
        for path in paths:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            pages.append((f"web {path} ({resp.status})", resp.read()))
            conn.close()
    finally:
        server.stop()
    assert any(b"A frame. You sent [redacted]" in body for _, body in pages), pages[:3]
    return pages
