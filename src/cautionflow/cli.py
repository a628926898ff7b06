"""The `cautionflow` command line: the same steps the DAG tasks call, without the scheduler."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from cautionflow.commands.common import CommandError, with_example
from cautionflow.config import CONFIG_ENV

if TYPE_CHECKING:
    from cautionflow.progress import Progress, ProgressEvent

# Each module in cautionflow.commands registers its own sub-commands.
COMMAND_MODULES = ("run", "status", "compute_deadlines", "demo_data", "letters", "governance", "dsar", "retention", "digests",
                   "mail", "tokens")

DEBUG_ENV = "CAUTIONFLOW_DEBUG"  # set: an unexpected error shows its traceback instead of one line


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake reported as one line (argparse's own puts the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cautionflow", description=__doc__, **with_example("cautionflow run sync --config cautionflow.yaml")
    )
    parser.add_argument("--version", action="version", version=f"cautionflow {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"cautionflow.commands.{name}")
        module.register(subparsers)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cautionflow")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if "config" in args and not args.config:
        args.config = os.environ.get(CONFIG_ENV)
        if not args.config:
            parser.exit(2, f"cautionflow: error: --config FILE is required (or set {CONFIG_ENV})\n")
    try:
        try:
            with console(sys.stderr) as progress:
                args.progress = progress
                code = int(args.handler(args) or 0)
        except CommandError as exc:
            print(f"cautionflow: error: {exc}", file=sys.stderr)
            code = 2
        except BrokenPipeError:
            raise  # the reader went away: handled quietly below
        except OSError as exc:  # a folder that cannot be written, a disk that is full: the file and why
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"cautionflow: error: {where}{exc.strerror or exc}", file=sys.stderr)
            code = 2
        except Exception as exc:
            # Every command error is one line: an unforeseen one says so and how to see more.
            if os.environ.get(DEBUG_ENV):
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            print(f"cautionflow: error: unexpected {type(exc).__name__}: {first} "
                  f"(set {DEBUG_ENV}=1 to see the traceback)", file=sys.stderr)
            code = 2
        sys.stdout.flush()  # here, so a closed pipe is caught below and not at interpreter exit
        return code
    except BrokenPipeError:
        # `cautionflow status | head`: the reader has what it wants. As the Python docs' SIGPIPE note
        # advises: point stdout at devnull so the final flush at exit cannot fail again, and end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1  # what Python itself exits with on EPIPE


# --- progress on stderr ---------------------------------------------------------------------------


@contextmanager
def console(stream: TextIO) -> Iterator[Progress]:
    """Progress for one command: on a terminal, a tqdm bar for each counted stage and the other log lines
    printed above the bars; otherwise (cron, a pipe, a file) the plain INFO lines of the `cautionflow`
    loggers. Either way on stderr: stdout keeps only the command's output, the JSON summary last."""
    logger = logging.getLogger("cautionflow")
    level = logger.level
    if stream.isatty():
        bars = TerminalProgress(stream)
        handler: logging.Handler = _TqdmHandler(stream)
        handler.addFilter(lambda record: not bars.shows(getattr(record, "progress_event", None)))
        progress: Progress = bars
    else:
        from cautionflow.progress import no_progress

        bars, handler, progress = None, logging.StreamHandler(stream), no_progress
    handler.setFormatter(logging.Formatter("cautionflow: %(message)s"))
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield progress
    finally:
        if bars is not None:
            bars.close()
        logger.removeHandler(handler)
        logger.setLevel(level)


class TerminalProgress:
    """A `Progress` drawing one tqdm bar per counted stage (rows read, validated, written)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bars: dict[tuple[str, str], Any] = {}
        self._shown: set[tuple[str, str]] = set()

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        if event.rows is None:
            return  # a stage only timed: its log line says it
        key = (event.step, event.stage)
        self._shown.add(key)
        bar = self._bars.get(key)
        if bar is None:
            bar = self._bars[key] = tqdm(
                desc=f"{event.step}: {event.stage}", total=event.total, unit=f" {event.unit}", unit_scale=True,
                file=self._stream, dynamic_ncols=True, leave=True,
            )
        if event.total is not None and bar.total != event.total:
            bar.total = event.total
        bar.update(event.rows - bar.n)
        if event.kind == "finished":
            if bar.total is None:
                bar.total = event.rows  # a count known only at the end: show it complete
            bar.close()
            del self._bars[key]

    def shows(self, event: ProgressEvent | None) -> bool:
        """Whether a bar already shows this event (its log line would say it twice)."""
        return event is not None and event.rows is not None and (event.step, event.stage) in self._shown

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


class _TqdmHandler(logging.StreamHandler):
    """Log lines written above the bars (tqdm.write), so a line never tears a bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging's own contract: report, never raise
            self.handleError(record)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
