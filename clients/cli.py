"""The `s2t` command line: one subcommand per client module, one clear error line on bad input."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from types import ModuleType

from engine import __version__
from engine.errors import S2TError

log = logging.getLogger("s2t")

# subcommand -> module. Each module defines `register(subparsers) -> None` (cheap: no heavy imports)
# and the parser it adds sets `func` to a callable taking the parsed args and returning an exit code.
COMMANDS: dict[str, str] = {
    "probe": "clients.probe",
    "emotion": "clients.emotion",
    "style": "clients.style",
    "render": "clients.render",
    "data": "clients.data",
    "train": "clients.train",
    "serve": "clients.webrtc.server",
    "vcam": "clients.vcam",
    "stream": "clients.stream",
    "bench": "clients.bench",
}


def _load(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            return None  # that client has not been built yet
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2t",
        description="style2talker-live: a voice in, a talking portrait out, live.",
    )
    parser.add_argument("--version", action="version", version=f"s2t {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        mod = _load(module)
        if mod is not None:
            mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except S2TError as e:
        if args.debug:
            raise
        sys.stderr.write(f"s2t {args.command}: error: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("s2t: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
