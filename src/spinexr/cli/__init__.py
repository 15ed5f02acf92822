"""Command line: ``spinexr <command> ...``.

Each subcommand is a module with ``add_parser(subparsers)`` and ``run(args) -> int``. Bad
input ends in one ``error: ...`` line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from spinexr import __version__
from spinexr.errors import SpinexrError

#: Subcommand name -> module under ``spinexr.cli``; imported only when needed.
COMMANDS: dict[str, str] = {
    "analyze": "analyze_cmd",
    "evaluate": "evaluate_cmd",
    "export": "export_cmd",
    "inspect": "inspect_cmd",
    "keys": "keys_cmd",
    "pack": "pack_cmd",
    "pacs": "pacs_cmd",
    "phantom": "phantom_cmd",
    "serve": "serve_cmd",
    "train": "train_cmd",
}

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _module(name: str):
    return importlib.import_module(f"spinexr.cli.{COMMANDS[name]}")


def build_parser(commands: list[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser; ``commands`` limits which subcommand modules are imported."""
    parser = argparse.ArgumentParser(
        prog="spinexr", description="AI on spine radiographs (research use, not a medical device).")
    parser.add_argument("--version", action="version", version=f"spinexr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands or list(COMMANDS):
        _module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 bad input or usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser([first] if first in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage / help
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.run(args))
    except SpinexrError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _one_line(text: str) -> str:
    return " | ".join(part.strip() for part in text.splitlines() if part.strip())
