"""The one error type the CLI turns into a clear one-line message instead of a traceback, and how
any other error is put in one line for the operator."""

from __future__ import annotations

from sqlalchemy.exc import StatementError


class VigilError(Exception):
    """An expected failure with a message meant for the user (bad input, bad settings, ...)."""

    exit_code = 1


def describe(exc: BaseException) -> str:
    """An error in one line for the operator: a VigilError's message says it all; a database
    error's first line only, as the rest holds the statement's values (posts, addresses)."""
    if isinstance(exc, VigilError):
        message = str(exc)
    elif isinstance(exc, StatementError) and exc.orig is not None:
        first_line = (str(exc.orig).strip().splitlines() or [""])[0]
        message = f"{type(exc.orig).__name__}: {first_line} (details in the log)"
    else:
        message = f"{type(exc).__name__}: {exc}"
    return " ".join(message.split())[:300]
