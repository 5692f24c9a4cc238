"""The classifier's section of ``vigil status``: which model labels mentions, and what is waiting."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classifier.meta import VIGIL_MODEL, ModelError, read_meta
from vigil.labels import REVIEWED
from vigil.models import Classification, Mention
from vigil.runtime import Runtime


def classifier_section(runtime: Runtime, session: Session) -> tuple[str, list[tuple[str, str]]]:
    """Read from the model's ``vigil.json`` and the database only: status never loads torch."""
    config = runtime.settings.classifier
    rows: list[tuple[str, str]] = []
    if config.model == VIGIL_MODEL:
        model_dir = Path(config.model_dir).expanduser()
        try:
            meta = read_meta(model_dir)
        except ModelError as exc:
            rows.append(("Model", str(exc)))
        else:
            precision = config.precision
            if precision == "auto":
                precision = "int8" if meta.get("int8_ok") else "fp32"
            macro = meta["metrics"][precision]["test"]["macro_f1"]
            rows += [
                ("Model", f"{VIGIL_MODEL} ({model_dir})"),
                ("Version", f"{meta['version']}-{precision}"),
                ("Trained", meta["trained_at"]),
                ("Test macro-F1", f"{macro:.3f}"),
            ]
    else:
        rows.append(("Model", f"{config.model} (version known once loaded)"))
    pending = session.scalar(select(func.count()).select_from(Mention).where(~Mention.classification.has()))
    by_version = session.execute(
        select(Classification.model_id, Classification.model_version, func.count())
        .where(Classification.model_id != REVIEWED)
        .group_by(Classification.model_id, Classification.model_version)
        .order_by(func.count().desc())
    ).all()
    reviewed = session.scalar(select(func.count()).where(Classification.model_id == REVIEWED))
    rows.append(("Awaiting classification", str(pending or 0)))
    for model_id, version, number in by_version:
        rows.append(("Labelled", f"{number} by {model_id} {version}"))
    if reviewed:  # model_version holds who: one row for all, not one per person
        rows.append(("Labels set by people", f"{reviewed} (vigil mentions label)"))
    return "Classifier", rows
