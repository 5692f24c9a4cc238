"""Where Vigil's data folders (``config/``, ``migrations/``) live, in a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the folder ``name``: inside the wheel (``vigil/_data``) or at the checkout's top."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"Vigil's {name}/ folder is missing from {_PACKAGE.parent}")
