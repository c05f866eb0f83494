"""`relaygate --help` and argument parsing support: the version, argument types whose errors read
well, and the pass that gives every command a description and every option its default."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def package_version() -> str:
    """The installed package's version (`relaygate --version`)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("relaygate")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type whose ValueError text is the message (not "invalid <function name> value")."""

    def convert(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def purge_age(raw: str) -> float:
    from relaygate.auth.tokens import parse_duration

    return parse_duration(raw)


def retention_days(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise ValueError(f"must be a number of days >= 0, got {raw!r}")
    return value


def finish_help(parser: argparse.ArgumentParser) -> None:
    """Every command gets a description (its one-line help when it has none) and every option's help
    says its default (appended when its text does not already)."""
    for action in parser._actions:
        if (
            action.option_strings
            and action.help not in (None, argparse.SUPPRESS)
            and not any(word in action.help for word in ("default", "required"))
            and not isinstance(action, argparse._VersionAction | argparse._HelpAction)
        ):
            if action.required:
                action.help += " (required)"
            elif isinstance(action, argparse._StoreTrueAction):
                action.help += " (default: off)"
            elif action.default is None:
                action.help += " (default: none)"
            else:
                action.help += f" (default: {str(action.default).replace('%', '%%')})"
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                if child.description is None and helps.get(name):
                    text = str(helps[name])
                    child.description = text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
                finish_help(child)
