"""PostgreSQL request cache beyond the shared contract: a server that stops and comes back,
connections that die, preflight, pickling, passwords, schema creation racing, and the
binding of a run dir to one cache."""

from __future__ import annotations

import pickle
import sys
import threading
import time

import pytest

import support.postgres as postgres
import support.servers as servers
from diffcap.config import EngineConfig, RunConfig
from diffcap.config.resolve import validate
from diffcap.engine.stage import StageWorker
from diffcap.errors import CacheUnavailable, ConfigError, fault_kind
from diffcap.store import RunStore
from diffcap.store.cache import (
    bind_request_cache,
    describe_cache_url,
    open_request_cache,
    run_request_cache,
)
from diffcap.store.postgres import PostgresRequestCache
from diffcap.store.requests import CachedResponse
from support.postgres import start_postgres
from support.servers import free_port

pg_server = postgres.pg_server
pg_url = postgres.pg_url
_fault_server_session = servers._fault_server_session
fault_server = servers.fault_server


def resp(text: str = "answer", pt: int = 3) -> CachedResponse:
    return CachedResponse(text, "m", "stop", pt, 1, 0.01)


def test_server_stopped_mid_run_is_transient_and_the_same_object_recovers():
    with start_postgres() as srv:
        cache = PostgresRequestCache(srv.url(), "run")
        cache.put_response("before", "openai", resp("kept"))
        srv.stop()
        with pytest.raises(CacheUnavailable) as err:
            cache.put_response("during", "openai", resp())
        assert fault_kind(err.value) == "transient"
        assert f"127.0.0.1:{srv.port}" in str(err.value) and len(str(err.value).splitlines()) == 1
        with pytest.raises(CacheUnavailable):  # still down: refused again, quickly
            cache.cached_response("before")
        srv.start()
        assert cache.cached_response("before").text == "kept"  # reconnected, data kept
        cache.put_response("after", "openai", resp())
        assert cache.spend()["requests"] == 2
        cache.close()


def test_a_connection_lost_between_calls_is_replaced_without_an_error(pg_server, pg_url):
    cache = PostgresRequestCache(pg_url, "run")
    cache.put_response("a", "openai", resp())
    (pid,) = pg_server.sql(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'diffcap'"
        " AND datname = current_database()",
        db=pg_url.rsplit("/", 1)[1],
    )[0]
    pg_server.sql("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.1)
    cache.put_response("b", "openai", resp())  # the dead connection is replaced at once
    assert cache.spend()["requests"] == 2
    cache.close()


def test_preflight_against_a_closed_port_fails_fast_in_one_line():
    url = f"postgresql://diffcap:s3cret-pw@127.0.0.1:{free_port()}/cache"
    started = time.monotonic()
    with pytest.raises(CacheUnavailable) as err:
        PostgresRequestCache(url, "run").check()
    assert time.monotonic() - started < 5
    text = str(err.value)
    assert "127.0.0.1:" in text and "s3cret-pw" not in text and len(text.splitlines()) == 1
    assert "postgresql://diffcap@127.0.0.1" in text


def test_pickles_as_config_and_connects_lazily(pg_url):
    cache = PostgresRequestCache(pg_url, "run")
    cache.put_response("k", "openai", resp("x"))
    clone = pickle.loads(pickle.dumps(cache))  # a live connection is not pickled
    assert clone._conn is None and (clone.url, clone.run_id) == (pg_url, "run")
    assert clone.cached_response("k").text == "x"
    cache.close()
    clone.close()


def test_workers_creating_the_schema_at_once_do_not_race(pg_url):
    caches = [PostgresRequestCache(pg_url, f"run{i % 2}") for i in range(6)]
    start, errors = threading.Barrier(len(caches)), []

    def go(cache: PostgresRequestCache) -> None:
        start.wait()
        try:
            cache.check()
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(c,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert all(c.spend()["requests"] == 0 for c in caches)
    for c in caches:
        c.close()


def test_passwords_never_reach_logs_or_the_run_dir(tmp_path):
    url = "postgresql://bob:hunter2-secret@db.example:6543/caps?sslmode=require&password=p2x"
    assert describe_cache_url(url) == "postgresql://bob@db.example:6543/caps?sslmode=require"
    assert describe_cache_url(None) == "sqlite"
    store = RunStore.open(tmp_path / "run.sqlite")
    bind_request_cache(store, EngineConfig(cache_url=url))
    store.close()
    raw = (tmp_path / "run.sqlite").read_bytes()
    assert b"hunter2-secret" not in raw and b"p2x" not in raw
    assert b"postgresql://bob@db.example:6543/caps" in raw


def test_cache_url_must_name_postgresql():
    assert validate({"engine": {"cache_url": "postgres://h/db"}}).engine.cache_url
    with pytest.raises(ConfigError, match=r"engine\.cache_url"):
        validate({"engine": {"cache_url": "mysql://h/db"}})


def test_a_run_dir_keeps_the_cache_it_started_with(tmp_path):
    pg = EngineConfig(cache_url="postgresql://u:pw1@h:5432/db")
    store = RunStore.open(tmp_path / "run.sqlite")
    run_id = bind_request_cache(store, pg)
    assert run_id and bind_request_cache(store, pg) == run_id  # stable
    # Another password for the same place is the same cache.
    other_password = EngineConfig(cache_url="postgresql://u:pw2@h:5432/db")
    assert bind_request_cache(store, other_password) == run_id
    with pytest.raises(ConfigError, match="its request cache is postgresql://u@h:5432/db"):
        bind_request_cache(store, EngineConfig())
    with pytest.raises(ConfigError, match="not postgresql://u@other:5432/db"):
        bind_request_cache(store, EngineConfig(cache_url="postgresql://u@other:5432/db"))
    store.close()


def test_a_sqlite_run_with_answers_is_not_moved_silently(tmp_path):
    store = RunStore.open(tmp_path / "run.sqlite")  # a run from before the binding
    store.put_response("k", "openai", resp())
    with pytest.raises(ConfigError, match="its request cache is sqlite") as err:
        bind_request_cache(store, EngineConfig(cache_url="postgresql://u@h/db"))
    assert "no --engine-cache-url" in str(err.value)
    assert bind_request_cache(store, EngineConfig()) is None
    store.close()


def test_the_driver_reads_spend_from_postgresql(tmp_path, pg_url):
    cfg = RunConfig.model_validate({"engine": {"cache_url": pg_url}})
    worker = open_request_cache(cfg.engine, tmp_path)  # binds the run dir, as setup would
    worker.put_response("k", "openai", resp(pt=40))
    store = RunStore.open(tmp_path / "run.sqlite")
    assert store.spend()["requests"] == 0  # nothing in run.sqlite
    cache = run_request_cache(store, cfg.engine)
    assert cache is not store and cache.spend()["prompt_tokens"] == 40
    store.use_request_cache(cache)
    assert store.spend()["prompt_tokens"] == 40 and store.replays() == 0
    store.close()
    worker.close()


def test_without_psycopg_the_error_names_the_extra(monkeypatch):
    from diffcap.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'diffcap\[postgres\]'"):
        PostgresRequestCache("postgresql://u@127.0.0.1:1/db", "run").check()


def test_status_of_a_run_whose_cache_is_down_says_so_and_shows_the_rest(tmp_path):
    from diffcap.pipeline.status import format_status, run_status

    store = RunStore.open(tmp_path / "run.sqlite")
    port = free_port()
    bind_request_cache(store, EngineConfig(cache_url=f"postgresql://u@127.0.0.1:{port}/db"))
    store.close()
    st = run_status(tmp_path)
    assert st["spend"] is None and f"127.0.0.1:{port}" in st["spend_error"]
    text = format_status(st)
    assert "requests paid: unknown (request cache at 127.0.0.1:" in text
    assert "done: 0" in text


def test_status_reads_the_spend_from_postgresql(tmp_path, pg_url):
    from diffcap.pipeline.status import format_status, run_status

    cache = open_request_cache(EngineConfig(cache_url=pg_url), tmp_path)
    cache.put_response("k", "openai", resp(pt=12))
    cache.close()
    st = run_status(tmp_path)
    assert st["spend"]["requests"] == 1 and st["spend"]["prompt_tokens"] == 12
    assert "requests paid: 1, tokens: 12 prompt" in format_status(st)
    assert f"(cache: {pg_url})" in format_status(st)


def test_a_user_without_create_rights_uses_tables_an_admin_made(pg_server, pg_url):
    PostgresRequestCache(pg_url, "setup").check()  # the admin's first connect makes the tables
    db = pg_url.rsplit("/", 1)[1]
    pg_server.sql("DROP ROLE IF EXISTS diffcap_worker")
    pg_server.sql("CREATE ROLE diffcap_worker LOGIN")
    pg_server.sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC", db=db)
    grant = "GRANT SELECT, INSERT, UPDATE ON diffcap_requests, diffcap_runs TO diffcap_worker"
    pg_server.sql(grant, db=db)
    worker = PostgresRequestCache(pg_url.replace("postgres@", "diffcap_worker@"), "run")
    worker.put_response("k", "openai", resp("by the worker"))
    assert worker.cached_response("k").text == "by the worker"
    worker.close()
    pg_server.sql("REVOKE ALL ON diffcap_requests, diffcap_runs FROM diffcap_worker", db=db)
    pg_server.sql("DROP ROLE diffcap_worker")  # roles are per server, not per database


@pytest.mark.parametrize("wrong", ["database", "user"])
def test_a_wrong_user_or_database_is_a_setting_not_a_fault_of_the_world(pg_server, wrong):
    url = pg_server.url("no_such_db") if wrong == "database" else pg_server.url()
    if wrong == "user":
        url = url.replace("postgres@", "nobody_here@")
    with pytest.raises(ConfigError, match="refused the connection") as err:
        PostgresRequestCache(url, "run").check()
    assert fault_kind(err.value) == "fatal" and "does not exist" in str(err.value)


def test_a_checked_model_stage_takes_the_run_id_to_workers_without_run_sqlite(
    fault_server, pg_url, tmp_path
):
    from diffcap.stages.caption import CaptionStage

    model = {"api_base": fault_server.base_url, "model": "loopback", "api_key": "k"}
    cfg = RunConfig.model_validate({"model": model, "engine": {"cache_url": pg_url}})
    stage = CaptionStage(cfg, tmp_path)
    stage.preflight()  # on the driver: binds the run dir, connects once
    store = RunStore.open(tmp_path / "run.sqlite")
    run_id = store.get_meta("run_id")
    store.close()
    worker = StageWorker(pickle.loads(pickle.dumps(stage)))  # a Ray actor's or pool worker's
    (tmp_path / "run.sqlite").rename(tmp_path / "elsewhere.sqlite")  # another node's view
    worker.setup()
    cache = worker.stage.cache
    try:
        assert isinstance(cache, PostgresRequestCache) and cache.run_id == run_id
        assert not (tmp_path / "run.sqlite").exists()  # the worker never opened run.sqlite
    finally:
        worker.close()


def test_the_cache_is_checked_even_when_the_endpoint_is_each_nodes_own(pg_url, tmp_path):
    from diffcap.stages.caption import CaptionStage

    model = {"api_base": f"http://127.0.0.1:{free_port()}/v1", "model": "m", "api_key": "k"}
    engine = {"engine": "ray", "ray_address": "ray://head:10001", "cache_url": pg_url}
    stage = CaptionStage(RunConfig.model_validate({"model": model, "engine": engine}), tmp_path)
    # the loopback server is the workers' to check; the cache is the driver's
    assert stage.check() is not None  # the run's id in the cache, for the workers
    bad = engine | {"cache_url": f"postgresql://u@127.0.0.1:{free_port()}/db"}
    other = CaptionStage(RunConfig.model_validate({"model": model, "engine": bad}), tmp_path)
    with pytest.raises(ConfigError, match="its request cache is"):
        other.check()
