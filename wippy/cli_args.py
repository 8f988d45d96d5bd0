"""Argument types shared by the ``wippy`` sub-commands."""

from __future__ import annotations

import argparse


def seconds_arg(text: str) -> float:
    """A number of seconds, 0 or more (0 usually means "no limit")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value
