"""Entry point of the ``diffcap`` CLI.

Commands live in small modules and are imported only when used, so ``diffcap probe`` never
pays for torch. Errors derived from :class:`~diffcap.errors.DiffcapError` print one line and
exit 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import click

from diffcap import __version__
from diffcap.errors import (
    EXIT_CODES,
    ConfigError,
    DiffcapError,
    ModelUnavailable,
    RunDirLocked,
    RunStopped,
    StorageError,
    TemplateError,
)
from diffcap.redact import install_log_filter, redact

#: command name -> "module:attribute" (relative to diffcap.cli)
COMMANDS: dict[str, str] = {
    "probe": "probe:probe",
    "models": "models:models",
    "keyframes": "keyframes:keyframes",
    "caption": "caption:caption",
    "summarize": "caption:summarize",
    "recaption": "caption:recaption",
    "sample": "sample:sample",
    "run": "run:run",
    "status": "run:status",
    "export": "export:export",
    "view": "web:view",
    "review": "web:review",
    "review-stats": "web:review_stats",
    "train": "train:train",
    "train-dpo": "train:train_dpo",
    "eval": "eval:eval_cmd",
    "eval-compare": "eval:eval_compare",
}


class LazyGroup(click.Group):
    #: Once a command's module is loaded, move every object so far (the modules' own, which
    #: live as long as the process) to the collector's permanent generation: collections
    #: during the run, and the interpreter's at exit, no longer walk them (tens of
    #: milliseconds of each command). Set only when main() is the process's entry.
    freeze_imports = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(f"diffcap.cli.{module}"), attr)
        if self.freeze_imports:
            gc.freeze()
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="diffcap")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", count=True, help="Log progress details (-vv for debug logs).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, quiet: bool) -> None:
    """diffcap: dense, temporally precise video captions (ShareGPT4Video's pipeline)."""
    level = logging.INFO if verbose == 1 else logging.WARNING
    if debug or verbose > 1:
        level = logging.DEBUG
    if quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    install_log_filter()  # on the diffcap logger and the root handlers: children too
    for noisy in ("httpx", "httpcore", "openai", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["quiet"] = quiet


def exit_code_of(exc: DiffcapError) -> int:
    """The documented exit code of a diffcap error (README, "Exit codes")."""
    if isinstance(exc, (ConfigError, TemplateError)):
        return EXIT_CODES["usage"]
    if isinstance(exc, ModelUnavailable):
        return EXIT_CODES["no_model"]
    if isinstance(exc, RunDirLocked):
        return EXIT_CODES["locked"]
    if isinstance(exc, (StorageError, RunStopped)):
        return EXIT_CODES["stopped"]
    return EXIT_CODES["error"]


def _crash_log(exc: BaseException) -> Path:
    """Write the traceback of a bug where the user can find it; returns the path."""
    folder = Path(os.environ.get("DIFFCAP_LOG_DIR") or Path.home() / ".cache" / "diffcap")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    text = redact("".join(traceback.format_exception(exc)))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{stamp}-{os.getpid()}.log"
        path.write_text(text, encoding="utf-8")
    except OSError:
        path = Path(tempfile.gettempdir()) / f"diffcap-crash-{stamp}-{os.getpid()}.log"
        path.write_text(text, encoding="utf-8")
    return path


def _interrupted() -> None:
    """Ctrl-C: one line, and out at once. Everything finished is committed (SQLite, atomic
    files), the run lock dies with the process, and worker processes watch for their
    parent; waiting for a long extraction in a worker thread would only delay the exit."""
    click.echo("interrupted; rerun the same command to resume (finished work is kept)", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


#: Global options, accepted before or after the subcommand (no subcommand defines them).
GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "-vv", "--verbose", "--debug"})


def hoist_global_flags(args: list[str]) -> list[str]:
    """``diffcap run x --out d -q`` -> ``diffcap -q run x --out d`` (up to a ``--``)."""
    cut = args.index("--") if "--" in args else len(args)
    head, tail = args[:cut], args[cut:]
    flags = [a for a in head if a in GLOBAL_FLAGS]
    return flags + [a for a in head if a not in GLOBAL_FLAGS] + tail


def _usage_error(exc: click.UsageError) -> None:
    """One line saying what is wrong, then the usage line (not the whole help)."""
    click.echo(f"error: {exc.format_message()}", err=True)
    if exc.ctx is not None:
        click.echo(f"{exc.ctx.get_usage()} (see: {exc.ctx.command_path} --help)", err=True)
    sys.exit(exc.exit_code)


#: OpenBLAS's idle threads (numpy's BLAS) spin for 2**28 cycles (~0.1 s) after the library
#: loads and after each parallel call before they sleep: 0.05-0.3 CPU s of every command (one
#: spinning thread per core, in every local worker process too), for no work. 2**20 cycles
#: (under a millisecond) removes that cost and still keeps the threads awake between
#: back-to-back products (2**4 made loops of small products slower; docs/keyframes.md).
BLAS_SPIN = ("OPENBLAS_THREAD_TIMEOUT", "20")


def quiet_blas_threads() -> None:
    """Stop numpy's BLAS threads from spinning idle, unless the user set it (read by OpenBLAS
    once, when numpy is first imported; worker processes inherit it)."""
    if "numpy" not in sys.modules:
        os.environ.setdefault(*BLAS_SPIN)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the CLI, turning diffcap errors into one-line messages."""
    # The process's own command (console script, python -m diffcap; in-process callers pass
    # argv): see LazyGroup.freeze_imports.
    LazyGroup.freeze_imports = argv is None
    if argv is None:
        quiet_blas_threads()
    args = hoist_global_flags(list(argv if argv is not None else sys.argv[1:]))
    debug = "--debug" in args
    try:
        rc = cli.main(args=args, prog_name="diffcap", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _interrupted()
    except click.UsageError as exc:
        _usage_error(exc)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DiffcapError as exc:
        if debug:
            traceback.print_exc()
        click.echo(redact(" ".join(f"error: {exc}".split())), err=True)
        sys.exit(exit_code_of(exc))
    except Exception as exc:  # a bug: say so, and where the traceback is
        if debug:
            traceback.print_exc()
        where = _crash_log(exc)
        click.echo(
            redact(f"internal error (a bug in diffcap): {type(exc).__name__}: {exc}; ")
            + f"traceback in {where}",
            err=True,
        )
        sys.exit(70)
    # Without standalone mode click returns ctx.exit(code)'s code instead of exiting.
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
