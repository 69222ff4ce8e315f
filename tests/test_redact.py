"""Secret redaction: URL user info, key-like text, known values, nested data, log records."""

from __future__ import annotations

import logging

import pytest

from diffcap.engine.rows import VideoRow
from diffcap.redact import (
    REDACTED,
    RedactingFilter,
    install_log_filter,
    redact,
    redact_data,
    redact_optional,
    register_secret,
    scrub_url_userinfo,
)

OPENAI = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("http://user:pw@host/v1", "http://[redacted]@host/v1"),
        ("https://user@host:8000/v1", "https://[redacted]@host:8000/v1"),
        ("see http://u:p%40ss@h.example/x and more", "see http://[redacted]@h.example/x and more"),
        ("http://u:p@ss@host/v1", "http://[redacted]@host/v1"),  # raw @ in the password
        (
            "two: http://a:b@h1/ and ftp://c:d@h2/",
            "two: http://[redacted]@h1/ and ftp://[redacted]@h2/",
        ),
        ("error at http://a:b@h1:9/v1: 401", "error at http://[redacted]@h1:9/v1: 401"),
    ],
)
def test_url_userinfo_is_scrubbed(text, want):
    assert scrub_url_userinfo(text) == want
    assert redact(text) == want


@pytest.mark.parametrize(
    "text",
    [
        "http://host:8000/v1",
        "mail ann@example.com about it",
        "http://host/path?who=a@b",  # '@' after the path is not user info
        "no url here",
        "",
    ],
)
def test_urls_without_userinfo_are_unchanged(text):
    assert scrub_url_userinfo(text) == text
    assert redact(text) == text


@pytest.mark.parametrize(
    "secret",
    [
        OPENAI,
        "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6hIj9kLm2n",
        "sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8t",
        "hf_Ab3dEf6hIj9kLm2nOp5q",
        "ghp_Ab3dEf6hIj9kLm2nOp5qRs8tUv",
        "AKIAABCDEFGHIJKLMNOP",
        "AIzaSyAb3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
)
def test_key_like_text_is_redacted_wherever_it_stands(secret):
    for text in (secret, f"401: bad key {secret}.", f'{{"key": "{secret}"}}', f"k={secret}&x=1"):
        out = redact(text)
        assert secret not in out and REDACTED in out


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [redacted]"),
        ("header bearer tok3n_value", "header bearer [redacted]"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [redacted]"),
        ("authorization=rawvalue123", "authorization=[redacted]"),
        ("GET /x?api_key=abcd1234&n=2", "GET /x?api_key=[redacted]&n=2"),
        ('{"access_token": "zzzz9999"}', '{"access_token": "[redacted]"}'),
        ("password: hunter22 next", "password: [redacted] next"),
    ],
)
def test_auth_values_and_key_parameters(text, want):
    assert redact(text) == want


@pytest.mark.parametrize(
    "text",
    [
        "desk-organizer-timelapse-2024.mp4",  # 'sk-' inside a word
        "sk-short1",  # too short for a key
        "the max_tokens=2048 limit",
        "a secret ingredient",
        "keyframes/v1/00001_00004.000.jpg",
        "Bearer",  # the word alone
        "prompt_tokens: 1000",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_extra_secrets_and_registered_values(monkeypatch):
    assert redact("the key is plainvalue42!", extra_secrets=["plainvalue42"]) == (
        "the key is [redacted]!"
    )
    assert redact("abc stays", extra_secrets=["abc"]) == "abc stays"  # too short to blank
    assert redact("x", extra_secrets=[None, ""]) == "x"
    register_secret("registered-value-77")
    assert redact("echo registered-value-77 back") == "echo [redacted] back"
    monkeypatch.setenv("OPENAI_API_KEY", "envkeyvalue-not-sk")
    assert redact("server said envkeyvalue-not-sk") == "server said [redacted]"
    # a key containing another is replaced whole, not leaving a tail
    assert redact("LONGsecret123", extra_secrets=["secret123", "LONGsecret123"]) == REDACTED


def test_redact_optional_passes_none():
    assert redact_optional(None) is None
    assert redact_optional(f"x {OPENAI}") == "x [redacted]"


def test_redact_data_by_field_name_and_value():
    prov = {
        "model": "gpt-4o",
        "api_key": "anything",
        "OPENAI_API_KEY": "x",
        "max_tokens": 2048,
        "prompt_tokens": 10,
        "options": {"token": "t", "hf_token": "h", "temperature": 0.2, "empty_key": None},
        "headers": [{"Authorization": "Bearer z"}],
        "api_base": "http://u:pw@host:8000/v1",
        "note": f"echoed {OPENAI}",
        "secret": "",
    }
    out = redact_data(prov)
    assert out["api_key"] == out["OPENAI_API_KEY"] == REDACTED
    assert out["max_tokens"] == 2048 and out["prompt_tokens"] == 10
    assert out["options"]["token"] == out["options"]["hf_token"] == REDACTED
    assert out["options"]["temperature"] == 0.2 and out["options"]["empty_key"] is None
    assert out["headers"][0]["Authorization"] == REDACTED
    assert out["api_base"] == "http://[redacted]@host:8000/v1"
    assert out["note"] == "echoed [redacted]"
    assert out["secret"] == ""
    assert prov["api_key"] == "anything"  # a copy, the input is untouched


def _record(msg, *args, exc_info=None):
    return logging.LogRecord("diffcap.x", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_log_filter_redacts_message_args_and_traceback():
    filt = RedactingFilter(extra_secrets=["configured-key-value"])
    rec = _record("calling %s with %s", "http://u:pw@h/v1", "configured-key-value")
    assert filt.filter(rec) is True
    assert rec.getMessage() == "calling http://[redacted]@h/v1 with [redacted]"
    try:
        raise RuntimeError(f"server echoed {OPENAI}")
    except RuntimeError:
        import sys

        rec = _record("failed", exc_info=sys.exc_info())
    filt.filter(rec)
    assert OPENAI not in logging.Formatter().format(rec)
    assert "server echoed [redacted]" in logging.Formatter().format(rec)


def test_log_filter_keeps_a_clean_record_untouched():
    rec = _record("%d videos", 3)
    RedactingFilter().filter(rec)
    assert rec.args == (3,) and rec.getMessage() == "3 videos"


def test_installed_filter_reaches_child_loggers_once(tmp_path):
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_log_filter()
        install_log_filter()  # idempotent
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        child = logging.getLogger("diffcap.some.module")
        child.warning("request to %s failed: key %s", "https://a:b@api/v1", OPENAI)
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "a:b@" not in text and OPENAI not in text
    assert "https://[redacted]@api/v1" in text


# --- the write points: config, store, outputs, CLI logging -------------------------------


def test_saved_config_and_store_meta_hold_no_userinfo_or_key(tmp_path):
    from diffcap.config import RunConfig
    from diffcap.config.resolve import config_to_dict, save_config

    cfg = RunConfig.model_validate(
        {"model": {"api_base": "http://user:pw-secret@host:8000/v1", "api_key": "cfgkey-12345"}}
    )
    data = config_to_dict(cfg)
    assert data["model"]["api_base"] == "http://[redacted]@host:8000/v1"
    save_config(cfg, tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    assert "pw-secret" not in text and "cfgkey-12345" not in text
    assert "http://[redacted]@host:8000/v1" in text
    # the configured key is now known: an error that echoes it is redacted at any write point
    assert redact("server says: cfgkey-12345 is invalid") == "server says: [redacted] is invalid"


def test_store_error_texts_and_failures_file_are_redacted(tmp_path):
    import json

    from diffcap.config import OutputConfig
    from diffcap.io.outputs import write_outputs
    from diffcap.store.db import RunStore, VideoEntry

    store = RunStore.open(tmp_path / "run.sqlite")
    store.add_videos([VideoEntry("a", "a.mp4"), VideoEntry("b", "b.mp4"), VideoEntry("c", "c.mp4")])
    echoed = f"401 from http://u:pw@api/v1: invalid key {OPENAI}"
    store.fail("a", "caption", "auth", echoed)
    store.filter("b", "filter", "duration", error=f"Authorization: Bearer {OPENAI}")
    store.commit_row(
        VideoRow(video_id="c", source="c.mp4", status="failed", stage="x", error=echoed)
    )
    store.add_bad_input("manifest.csv", 3, "missing", f"row names https://a:b@h/v.mp4 {OPENAI}")
    write_outputs(tmp_path, store, OutputConfig())
    store.close()
    raw = (tmp_path / "run.sqlite").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("*.jsonl")
    )
    assert OPENAI.encode() not in raw and b"u:pw@" not in raw and b"a:b@" not in raw
    failures = [json.loads(x) for x in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert failures[0]["error"] == "401 from http://[redacted]@api/v1: invalid key [redacted]"
    assert len(failures) == 3


def test_cli_logs_are_redacted(tmp_path):
    import subprocess
    import sys

    code = (
        "import logging, sys, types, click\n"
        "from diffcap.cli import main\n"
        "mod = sys.modules['diffcap.cli.leak'] = types.ModuleType('diffcap.cli.leak')\n"
        "mod.leak = click.command('leak')(lambda: logging.getLogger('diffcap.models.x')"
        ".warning('retrying http://u:pw@h/v1 with %s', sys.argv[-1]))\n"
        "main.COMMANDS['leak'] = 'leak:leak'\n"
        "main.cli.main(args=['leak'], standalone_mode=False)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, OPENAI], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert "retrying http://[redacted]@h/v1 with [redacted]" in res.stderr
    assert OPENAI not in res.stderr and "u:pw" not in res.stderr


def test_redactor_matches_the_functions(monkeypatch):
    from diffcap.redact import Redactor

    monkeypatch.setenv("HF_TOKEN", "envtoken-abcdef")
    r = Redactor(extra_secrets=["extra-secret-1"])
    for text in ("envtoken-abcdef and extra-secret-1", f"http://u:p@h/ {OPENAI}", "plain", ""):
        assert r.text(text) == redact(text, extra_secrets=["extra-secret-1"])
    data = {"api_key": "k", "nested": ["envtoken-abcdef", {"url": "http://u:p@h/"}]}
    assert r.data(data) == redact_data(data, ["extra-secret-1"])
    assert r.data(data)["nested"][0] == REDACTED
