"""What is known about the configured model without loading it (no torch import: ``vigil status``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vigil.errors import VigilError

META_FILE = "vigil.json"
VIGIL_MODEL = "vigil"


class ModelError(VigilError):
    """The configured model is missing or does not fit Vigil's labels."""


def read_meta(model_dir: Path) -> dict[str, Any]:
    """The ``vigil.json`` of a trained model, or a clear error saying how to train one."""
    path = model_dir / META_FILE
    if not path.is_file():
        raise ModelError(
            f"no trained model in {model_dir.resolve()}: run `vigil model train` to build it from the"
            " corpus (it copies the model from ~/.cache/vigil/models if this machine trained it already;"
            " classifier.model_dir is relative to the working directory unless set absolute)"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}): run `vigil model train --force`") from exc
