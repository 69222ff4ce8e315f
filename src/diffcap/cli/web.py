"""``diffcap view``, ``diffcap review`` and ``diffcap review-stats``.

diffcap view out/run1                      # http://127.0.0.1:8765/
diffcap view captions.jsonl --html report.html      # + report_files/ beside it
diffcap review out/gpt4v out/local --reviewer ann --db votes.sqlite
diffcap review-stats --db votes.sqlite --chart review.png
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from diffcap.cli.options import stack_options
from diffcap.errors import ConfigError
from diffcap.store.votes import DEFAULT_DB, VoteStore

if TYPE_CHECKING:
    from diffcap.web.server import App, WebServer

_HOST_HELP = "Address to bind; anything but loopback exposes the runs to the network."
_ALLOW_HELP = (
    "Also accept requests that name the server NAME in their Host header (repeatable); "
    "loopback names and the --host address are always accepted."
)
_MEDIA_HELP = (
    "Folder whose video files a records JSONL may point at (repeatable); run directories "
    "play the videos registered in their run.sqlite."
)


def _server_options(default_port: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """RUNS and --host/--port/--allow-host/--media-root/--open, shared by view and review."""
    return stack_options(
        click.argument(
            "runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
        ),
        click.option("--host", default="127.0.0.1", show_default=True, help=_HOST_HELP),
        click.option(
            "--port", default=default_port, show_default=True, help="Port (0 = any free port)."
        ),
        click.option(
            "--allow-host", "allow_hosts", multiple=True, metavar="NAME", help=_ALLOW_HELP
        ),
        click.option(
            "--media-root",
            "media_roots",
            multiple=True,
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help=_MEDIA_HELP,
        ),
        click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser."),
    )


def _bind(app: App, host: str, port: int, allow_hosts: tuple[str, ...]) -> WebServer:
    from diffcap.web.server import make_server

    try:
        return make_server(app, host, port, allow_hosts=allow_hosts)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another --port (0 = any free port)",
        ) from exc


@click.command()
@_server_options(8765)
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a static HTML report here (data files in <name>_files/ beside it) instead "
    "of serving.",
)
@click.option(
    "--thumb-size",
    type=click.IntRange(16, 4096),
    default=None,
    help="Write keyframe thumbnails of this longest side (px) beside the --html report "
    "[default: show the run's own keyframe files].",
)
@click.pass_context
def view(
    ctx: click.Context,
    runs: tuple[Path, ...],
    host: str,
    port: int,
    allow_hosts: tuple[str, ...],
    media_roots: tuple[Path, ...],
    open_browser: bool,
    html_out: Path | None,
    thumb_size: int | None,
) -> None:
    """Browse caption timelines of run directories or records JSONL files."""
    from diffcap.web.data import load_runs  # lazy: start-up

    loaded = load_runs(runs, media_roots=media_roots)
    quiet = bool((ctx.obj or {}).get("quiet"))
    if html_out is not None:
        from diffcap.web.report import write_report  # lazy: start-up

        out = write_report(loaded, html_out, thumb_side=thumb_size, quiet=quiet)
        click.echo(f"wrote {out}")
        return
    from diffcap.web.server import serve, server_url
    from diffcap.web.viewer import ViewerApp

    server = _bind(ViewerApp(loaded), host, port, allow_hosts)
    click.echo(f"diffcap viewer on {server_url(server)}  (Ctrl-C to stop)")
    serve(server, open_browser=open_browser)


@click.command()
@_server_options(8766)
@click.option(
    "--reviewer",
    default=None,
    help="Reviewer name stored with each vote [default: your login name].",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="SQLite file the votes go to (created if missing).",
)
def review(
    runs: tuple[Path, ...],
    host: str,
    port: int,
    allow_hosts: tuple[str, ...],
    media_roots: tuple[Path, ...],
    open_browser: bool,
    reviewer: str | None,
    db: Path,
) -> None:
    """Blind side-by-side review of the summaries of two or more runs (pairwise)."""
    from diffcap.web.data import load_runs  # lazy: start-up
    from diffcap.web.review import ReviewApp
    from diffcap.web.server import serve, server_url

    if len(runs) < 2:
        raise click.UsageError("give at least two runs to compare")
    reviewer = reviewer or _login_name()
    app = ReviewApp(load_runs(runs, media_roots=media_roots), VoteStore(db), reviewer=reviewer)
    server = _bind(app, host, port, allow_hosts)
    click.echo(f"review: {len(app.items)} items for {reviewer}, votes in {db}")
    click.echo(f"open {server_url(server)}  (Ctrl-C to stop; rerun to resume)")
    serve(server, open_browser=open_browser)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "anonymous"


@click.command("review-stats")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="The vote database written by `diffcap review`.",
)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a PNG chart of the rates here (needs the `review` extra).",
)
def review_stats(db: Path, chart: Path | None) -> None:
    """Win / tie / loss rates per pair of systems, with 95% Wilson score intervals."""
    from diffcap.web.stats import format_table, pair_stats, write_chart  # lazy: start-up

    if not db.is_file():
        raise ConfigError(
            f"{db}: no vote database here",
            hint="run `diffcap review A B --db FILE` first, or pass --db",
        )
    store = VoteStore(db)
    stats = pair_stats(store.votes())
    store.close()
    click.echo(format_table(stats))
    if chart is not None:
        if not stats:
            raise ConfigError("no votes yet, so no chart", hint="vote first with `diffcap review`")
        click.echo(f"wrote {write_chart(stats, chart)}")
