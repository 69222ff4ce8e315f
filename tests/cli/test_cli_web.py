"""`diffcap view`, `diffcap review` and `diffcap review-stats` from the command line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest
from click.testing import CliRunner
from PIL import Image

from diffcap.cli.main import cli
from diffcap.store.votes import VoteStore
from support.web_runs import raw_http, video, write_run_dir


def test_view_html_writes_a_report_with_data_and_thumbnails_beside_it(tmp_path):
    run = write_run_dir(tmp_path / "run", [video("v1", [0.0, 2.0], 4.0, summary="</script>x")])
    out = tmp_path / "report.html"
    res = CliRunner().invoke(
        cli, ["-q", "view", str(run), "--html", str(out), "--thumb-size", "64"]
    )
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "<script src=" not in html and '<link rel="stylesheet"' not in html
    assert html.count("</script>") == 2  # the data block and the inline script, nothing else
    data = (tmp_path / "report_files" / "data-00000.js").read_text()
    assert "</script>" not in data and "\\u003c/script\\u003e" in data
    thumbs = sorted((tmp_path / "report_files" / "thumbs").glob("*.jpg"))
    assert [p.name for p in thumbs] == ["0_0.jpg", "0_1.jpg"]
    assert all(max(Image.open(p).size) <= 64 for p in thumbs)
    # without --thumb-size the page shows the run's own keyframe files (relative links)
    res = CliRunner().invoke(cli, ["-q", "view", str(run), "--html", str(out)])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "report_files" / "thumbs").exists()
    assert (
        '"src":"run/keyframes/v1/00000_00000.000.jpg"'
        in (tmp_path / "report_files" / "data-00000.js").read_text()
    )


def test_review_stats_prints_rates_and_writes_chart(tmp_path):
    db = tmp_path / "votes.sqlite"
    store = VoteStore(db)
    for i in range(10):
        store.record(
            "ann",
            f"v{i}",
            "gpt",
            "local",
            left="gpt",
            choice="left" if i < 8 else ("tie" if i == 8 else "right"),
        )
    store.close()
    chart = tmp_path / "chart.png"
    res = CliRunner().invoke(cli, ["review-stats", "--db", str(db), "--chart", str(chart)])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("gpt"))
    assert re.search(r"gpt\s+local\s+10\s+80\.0% \[49\.0, 94\.3\]\s+10\.0% \[1\.8, 40\.4\]", line)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_review_stats_without_db_says_what_to_do(tmp_path):
    res = CliRunner().invoke(cli, ["review-stats", "--db", str(tmp_path / "none.sqlite")])
    assert res.exit_code != 0 and "diffcap review" in str(res.exception)


def test_review_needs_two_runs(tmp_path):
    run = write_run_dir(tmp_path / "run", [video("v1", [0.0], 1.0)])
    res = CliRunner().invoke(cli, ["review", str(run)])
    assert res.exit_code == 2 and "at least two runs" in res.output


@pytest.mark.parametrize("command", ["view", "review"])
def test_serve_commands_answer_http(tmp_path, command):
    a = write_run_dir(tmp_path / "a", [video("v1", [0.0], 1.0)])
    b = write_run_dir(tmp_path / "b", [video("v1", [0.0], 1.0)])
    args = [str(a)] if command == "view" else [str(a), str(b), "--db", str(tmp_path / "v.db")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "diffcap", command, *args, "--port", "0", "--allow-host", "box.lan"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = None
        for line in proc.stdout:  # the command prints its URL once it listens
            m = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if m:
                url = m.group(0)
                break
        assert url, "no URL printed"
        api = "api/meta" if command == "view" else "api/review/next?reviewer=x"
        with urllib.request.urlopen(url + api, timeout=10) as r:
            data = json.loads(r.read())
        assert data["total"] == 1 if command == "view" else data["progress"]["total"] == 1
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        for host, status in (("box.lan", 200), ("attacker.example", 400)):
            req = f"GET /{api} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
            assert raw_http(port, req.encode())[0] == status
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_without_the_web_stack_serving_names_the_extra_and_reports_still_work(tmp_path):
    run = write_run_dir(tmp_path / "run", [video("v1", [0.0], 1.0)])
    block = "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
    serve = (
        block + f"from diffcap.cli.main import main; main(['view', {str(run)!r}, '--port', '0'])"
    )
    res = subprocess.run([sys.executable, "-c", serve], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "pip install 'diffcap[web]'" in res.stderr
    report = block + (
        "import diffcap.web as w\n"
        f"w.write_report(w.load_runs([{str(run)!r}]), {str(tmp_path / 'r.html')!r}, quiet=True)\n"
        "print('starlette' in sys.modules and sys.modules['starlette'] is not None)"
    )
    res = subprocess.run([sys.executable, "-c", report], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False" and (tmp_path / "r_files" / "data-00000.js").is_file()
