from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.classifier.conftest import make_corpus
from vigil.cli import app
from vigil.models import Mention

runner = CliRunner()


def vigil(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def model_env(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIGIL_CLASSIFIER__MODEL_DIR", str(tiny_model))
    monkeypatch.setenv("VIGIL_CLASSIFIER__THREADS", "1")
    return tiny_model


@pytest.fixture
def with_model(env: dict[str, str], model_env: Path) -> Path:
    """The tiny model, and a test database (``env`` clears other VIGIL_ variables first)."""
    return model_env


def test_eval_json_has_the_model_and_both_baselines_per_label(model_env: Path, tiny_corpus: Path) -> None:
    code, output = vigil("model", "eval", str(tiny_corpus / "test.jsonl"), "--json")
    assert code == 0, output
    report = json.loads(output)
    model = report["model"]
    assert 0 <= model["macro_f1"] <= 1
    assert set(model["labels"]) == {"threat", "abusive", "critical", "praise"}
    for row in model["labels"].values():
        assert {"precision", "recall", "f1"} <= set(row)
    assert model["version"].endswith("-int8")
    assert set(report["baselines"]["profanity_check"]["labels"]) == {"abusive"}
    assert set(report["baselines"]["vader"]["labels"]) == {"critical", "praise"}
    assert "functions" not in model


def test_eval_of_the_functional_set_reports_accuracy_per_function(model_env: Path, tiny_corpus: Path) -> None:
    code, output = vigil("model", "eval", str(tiny_corpus / "functional.jsonl"), "--json")
    assert code == 0, output
    functions = json.loads(output)["model"]["functions"]
    assert set(functions) == {"negation", "violent_medical_language", "reporting_vs_threatening"}
    assert functions["reporting_vs_threatening"]["total"] == 2


def test_eval_prints_figures_baselines_confusion_and_functions(model_env: Path, tiny_corpus: Path) -> None:
    code, output = vigil("model", "eval", str(tiny_corpus / "functional.jsonl"))
    assert code == 0, output
    assert re.search(r"threat\s+│ [01]\.\d{3}", output)
    for text in ("profanity-check", "VADER", "Confusion per label", "Functional tests", "negation"):
        assert text in output


def test_eval_names_the_bad_line_of_a_broken_file(model_env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "labels": []}\n{"text": "x", "labels": ["nasty"]}\n')
    code, output = vigil("model", "eval", str(bad))
    assert code == 1
    assert f"{bad}:2: unknown label(s) nasty" in output


def test_without_a_trained_model_commands_say_to_train_one(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_CLASSIFIER__MODEL_DIR", str(tmp_path / "nothing"))
    code, output = vigil("classify")
    assert code == 1
    assert "error: no trained model in" in output and "run `vigil model train`" in output
    code, output = vigil("status")
    assert code == 0 and "run `vigil model train`" in output


def test_classify_labels_pending_mentions_and_status_shows_it(with_model: Path, session: Session) -> None:
    session.add_all(
        Mention(
            source="x", external_id=str(i), text=f"post {i}", created_at=datetime(2026, 11, 2, tzinfo=UTC)
        )
        for i in range(3)
    )
    session.commit()
    code, output = vigil("status")
    assert re.search(r"Awaiting classification\s+│ 3", output)
    code, output = vigil("classify")
    assert code == 0, output
    assert re.search(r"Labelled 3 mention\(s\) with vigil \w{16}-int8", output)
    code, output = vigil("status")
    assert re.search(r"Version\s+│ \w{16}-int8", output)
    assert re.search(r"Labelled\s+│ 3 by vigil \w{16}-int8", output)
    code, output = vigil("model", "reclassify")
    assert code == 0 and "Labelled 0 mention(s)" in output


def test_split_and_train_from_the_command_line_then_reuse_the_cache(
    env: dict[str, str], tmp_path: Path, tiny_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    for name in ("train", "dev", "test", "functional"):
        (corpus / f"{name}.jsonl").unlink()
    code, output = vigil("model", "split", "--corpus", str(corpus))
    assert code == 0, output
    assert re.search(r"train\s+│ \d+", output) and (corpus / "train.jsonl").is_file()
    monkeypatch.setenv("VIGIL_CLASSIFIER__BASE_MODEL", str(tiny_base))
    monkeypatch.setenv("VIGIL_CLASSIFIER__MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("VIGIL_CLASSIFIER__CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VIGIL_CLASSIFIER__THREADS", "1")
    code, output = vigil("model", "train", "--corpus", str(corpus))
    assert code == 0, output
    assert re.search(r"Model \w{16} trained in \d+ s; installed in", output)
    assert "Test split (" in output and "Model card:" in output
    shutil.rmtree(tmp_path / "model")
    code, output = vigil("model", "train", "--corpus", str(corpus))
    assert code == 0 and "reused from the cache" in output
    assert (tmp_path / "model" / "vigil.json").is_file()
