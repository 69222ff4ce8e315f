"""The request-cache contract, run against every store: the run's SQLite file and PostgreSQL
(a real server started by the tests). Real processes write at once and get killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import support.postgres as postgres
from diffcap.store.cache import RequestCacheStore
from diffcap.store.requests import CachedResponse
from support.cache_writer import answer, open_spec

TESTS = Path(__file__).resolve().parents[1]

pg_server = postgres.pg_server
pg_url = postgres.pg_url


class Stores:
    """Opens caches of named runs in one store (one SQLite file per run dir, or one
    PostgreSQL database shared by every run) and lists the rows a run holds."""

    def __init__(self, kind: str, root: Path, url: str | None) -> None:
        self.kind, self.root, self.url = kind, root, url
        self.opened: list[RequestCacheStore] = []

    def spec(self, run: str = "run") -> dict:
        if self.kind == "sqlite":
            return {"kind": "sqlite", "path": str(self.root / run / "run.sqlite")}
        return {"kind": "postgres", "url": self.url, "run_id": run}

    def open(self, run: str = "run") -> RequestCacheStore:
        cache = open_spec(self.spec(run))
        self.opened.append(cache)
        return cache

    def rows(self, run: str = "run") -> list[tuple]:
        """(cache_key, prompt_tokens, completion_tokens) of every stored row of ``run``."""
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.root / run / "run.sqlite") as conn:
                sql = "SELECT cache_key, prompt_tokens, completion_tokens FROM requests"
                return [tuple(r) for r in conn.execute(sql)]
        import psycopg

        with psycopg.connect(str(self.url)) as conn:
            sql = (
                "SELECT cache_key, prompt_tokens, completion_tokens FROM diffcap_requests"
                " WHERE run_id = %s"
            )
            return [tuple(r) for r in conn.execute(sql, (run,))]

    def close(self) -> None:
        for cache in self.opened:
            cache.close()


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    s = Stores(request.param, tmp_path, url)
    yield s
    s.close()


def resp(text: str = "an answer", pt: int = 11, ct: int = 7, cost: float = 0.25) -> CachedResponse:
    return CachedResponse(text, "model-x", "stop", pt, ct, cost)


def test_is_the_interface(stores):
    assert isinstance(stores.open(), RequestCacheStore)


def test_round_trip_of_every_field(stores):
    cache = stores.open()
    assert cache.cached_response("k") is None
    stored = CachedResponse("a caption\nover lines", "model-x", "length", 123, 45, 0.0125)
    cache.put_response("k", "openai", stored)
    assert cache.cached_response("k") == stored
    assert cache.cached_response("other") is None
    none_finish = CachedResponse("t", "m", None, 0, 0, 0.0)
    cache.put_response("k2", "openai", none_finish)
    assert cache.cached_response("k2") == none_finish
    # A fresh connection (another process would do the same) sees it.
    assert stores.open().cached_response("k") == stored


def test_first_writer_wins(stores):
    cache, other = stores.open(), stores.open()
    cache.put_response("k", "openai", resp("first", pt=10, ct=1, cost=0.5))
    other.put_response("k", "openai", resp("second", pt=99, ct=99, cost=9.0))  # no error
    cache.put_response("k", "openai", resp("third", pt=5))
    assert other.cached_response("k").text == "first"
    assert cache.spend() == {
        "requests": 1,
        "prompt_tokens": 10,
        "completion_tokens": 1,
        "cost_usd": pytest.approx(0.5),
    }
    assert len(stores.rows()) == 1


def test_spend_sums_every_answer(stores):
    cache = stores.open()
    assert cache.spend() == {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                             "cost_usd": 0.0}  # fmt: skip
    for i in range(1, 6):
        cache.put_response(f"k{i}", "openai", resp(pt=i, ct=10 * i, cost=i / 100))
    spend = stores.open().spend()
    assert spend["requests"] == 5
    assert spend["prompt_tokens"] == 15 and spend["completion_tokens"] == 150
    assert spend["cost_usd"] == pytest.approx(0.15)


def test_replays_are_counted_for_the_whole_run(stores):
    a, b = stores.open(), stores.open()
    assert a.replays() == 0
    a.count_replay()
    b.count_replay()
    a.count_replay()
    assert b.replays() == 3 and stores.open().replays() == 3
    assert a.spend()["requests"] == 0  # replays are not paid requests


def test_two_runs_never_see_each_other(stores):
    one, two = stores.open("run-a"), stores.open("run-b")
    one.put_response("same-key", "openai", resp("from a", pt=1, cost=1.0))
    two.put_response("same-key", "openai", resp("from b", pt=2, cost=2.0))
    two.put_response("only-b", "openai", resp("b2", pt=3, cost=3.0))
    one.count_replay()
    assert one.cached_response("same-key").text == "from a"
    assert two.cached_response("same-key").text == "from b"
    assert one.cached_response("only-b") is None
    assert one.spend()["requests"] == 1 and one.spend()["cost_usd"] == pytest.approx(1.0)
    assert two.spend()["requests"] == 2 and two.spend()["cost_usd"] == pytest.approx(5.0)
    assert (one.replays(), two.replays()) == (1, 0)


HOSTILE = [
    "'; DROP TABLE diffcap_requests; --",
    '"); DELETE FROM diffcap_runs; --',
    "%s %(run)s {0} $1 ? :name",
    "back\\slash \\x00 not a nul",
    "ключ 鍵 🔑 e\u0301",
    "x" * 5000,
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_keys_and_texts_are_data(stores, hostile):
    cache = stores.open()
    stored = CachedResponse(hostile, hostile[:200], hostile[:50], 1, 2, 0.5)
    cache.put_response(hostile, hostile[:80], stored)
    assert cache.cached_response(hostile) == stored
    cache.put_response("plain", "openai", resp())
    assert cache.spend()["requests"] == 2  # the tables are still there, both rows counted
    assert sorted(r[0] for r in stores.rows()) == sorted([hostile, "plain"])


def test_nul_bytes_in_the_answer_round_trip(stores):
    cache = stores.open()
    text = "before\x00after\x00\x00 and unicode ✓ \x01\x7f"
    cache.put_response("k", "openai", resp(text))
    assert cache.cached_response("k").text == text
    assert stores.open().cached_response("k").text == text


@pytest.mark.parametrize("field", ["key", "backend", "model", "finish"])
def test_nul_bytes_elsewhere_are_refused_clearly(stores, field):
    cache = stores.open()
    values = {"key": "k", "backend": "openai", "model": "m", "finish": "stop"}
    values[field] = "bad\x00" + values[field]
    entry = CachedResponse("t", values["model"], values["finish"], 1, 1, 0.0)
    with pytest.raises(ValueError, match="holds a NUL byte"):
        cache.put_response(values["key"], values["backend"], entry)
    assert cache.spend()["requests"] == 0 and stores.rows() == []


def writer(stores: Stores, name: str, first: int, count: int, go: Path | None = None):
    args = [json.dumps(stores.spec()), name, str(first), str(count)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    return subprocess.Popen(
        [sys.executable, "-m", "support.cache_writer", *args, *([str(go)] if go else [])],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expected_usage(keys: set[str]) -> tuple[int, int]:
    return sum(int(k[1:]) for k in keys), sum(2 * int(k[1:]) for k in keys)


def test_two_processes_writing_overlapping_keys(stores, tmp_path):
    stores.open().spend()  # the run exists (SQLite: its folder and file)
    go = tmp_path / "go"
    procs = [writer(stores, "w1", 0, 150, go), writer(stores, "w2", 75, 150, go)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()  # both start writing at once
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert len(out.split()) == 150  # every put acknowledged, none raised
    unique = {f"k{i}" for i in range(225)}
    rows = stores.rows()
    assert sorted(r[0] for r in rows) == sorted(unique)  # exactly one row per key
    spend = stores.open().spend()
    assert spend["requests"] == 225
    assert (spend["prompt_tokens"], spend["completion_tokens"]) == expected_usage(unique)
    assert spend["cost_usd"] == pytest.approx(sum(int(k[1:]) for k in unique) / 1000)
    cache = stores.open()
    for i in (0, 80, 140, 224):  # overlapping keys hold one writer's whole answer
        got = cache.cached_response(f"k{i}")
        assert got.text in (answer(f"k{i}", "w1").text, answer(f"k{i}", "w2").text)


def test_kill_9_mid_stream_keeps_every_acknowledged_put(stores):
    stores.open().spend()
    proc = writer(stores, "w", 0, 1_000_000)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    acked = [proc.stdout.readline().strip() for _ in range(300)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    acked += proc.stdout.read().split()  # what it printed before it died
    time.sleep(0.2)  # PostgreSQL notices the dead client and ends its session
    rows = stores.rows()
    keys = {r[0] for r in rows}
    assert set(acked) <= keys  # nothing acknowledged was lost
    assert len(rows) == len(keys)  # no duplicates, no half-written row
    spend = stores.open().spend()
    assert spend["requests"] == len(rows)  # the totals match the rows exactly
    assert (spend["prompt_tokens"], spend["completion_tokens"]) == expected_usage(keys)
    cache = stores.open()
    cache.put_response("after", "openai", resp(pt=0, ct=0, cost=0.0))  # still writable
    assert cache.spend()["requests"] == len(rows) + 1
