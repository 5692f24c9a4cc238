"""The one error type the CLI turns into a clear one-line message instead of a traceback."""

from __future__ import annotations


class VigilError(Exception):
    """An expected failure with a message meant for the user (bad input, bad settings, ...)."""

    exit_code = 1
