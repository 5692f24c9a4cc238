from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from rich.progress import Progress
from safetensors.torch import load_file
from transformers import AutoTokenizer

from classifier.train import (
    TrainConfig,
    encode,
    ensure_model,
    fingerprint,
    with_context,
)
from tests.classifier.conftest import TINY, make_corpus, tiny_settings
from vigil.errors import VigilError


def test_training_writes_weights_tokenizer_thresholds_metrics_and_a_model_card(tiny_model: Path) -> None:
    assert (tiny_model / "model.safetensors").is_file()
    assert (tiny_model / "tokenizer.json").is_file()
    meta = json.loads((tiny_model / "vigil.json").read_text())
    assert meta["labels"] == ["threat", "abusive", "critical", "praise"]
    assert set(meta["thresholds"]) == {"fp32", "int8"}
    assert all(0 < value < 1 for value in meta["thresholds"]["int8"].values())
    assert set(meta["metrics"]["int8"]) == {"dev", "test", "functional"}
    assert "functions" in meta["metrics"]["int8"]["functional"]
    assert meta["train_config"]["epochs"] == TINY.epochs == len(meta["history"])
    card = (tiny_model / "README.md").read_text()
    for heading in ("## Data", "## Training", "## Thresholds", "## Results", "## Quantisation"):
        assert heading in card
    assert meta["version"] in card
    assert f"threads of {meta['cpu']}" in card


def test_a_second_run_reuses_the_cached_model_and_force_retrains_it_identically(
    tmp_path: Path, tiny_base: Path, tiny_corpus: Path
) -> None:
    settings = tiny_settings(tmp_path, tiny_base)
    first, trained = ensure_model(settings, tiny_corpus, config=TINY)
    assert trained
    weights = load_file(first / "model.safetensors")
    shutil.rmtree(first)
    again, trained = ensure_model(settings, tiny_corpus, config=TINY)
    assert again == first and not trained
    forced, trained = ensure_model(settings, tiny_corpus, config=TINY, force=True)
    assert trained
    retrained = load_file(forced / "model.safetensors")
    assert all((weights[name] == retrained[name]).all() for name in weights)


def test_the_fingerprint_changes_with_the_corpus_the_configuration_and_the_base(
    tmp_path: Path, tiny_base: Path
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    first = fingerprint(corpus, TINY, str(tiny_base))
    assert fingerprint(corpus, TINY, str(tiny_base)) == first
    assert fingerprint(corpus, TrainConfig(epochs=3), str(tiny_base)) != first
    assert fingerprint(corpus, TINY, "some/hub-model") != first
    with (corpus / "dev.jsonl").open("a") as handle:
        handle.write(json.dumps({"text": "one more", "labels": []}) + "\n")
    assert fingerprint(corpus, TINY, str(tiny_base)) != first


def test_training_shows_its_progress(tmp_path: Path, tiny_base: Path, tiny_corpus: Path) -> None:
    console = Console(record=True, width=100)
    with Progress(console=console) as progress:
        ensure_model(tiny_settings(tmp_path, tiny_base), tiny_corpus, config=TINY, progress=progress)
        [task] = progress.tasks
        assert task.finished and task.total and task.total > 0


def test_missing_splits_stop_training_with_a_clear_error(tmp_path: Path, tiny_base: Path) -> None:
    (tmp_path / "corpus").mkdir()
    with pytest.raises(VigilError, match=r"train.jsonl.*run `vigil model split`"):
        ensure_model(tiny_settings(tmp_path, tiny_base), tmp_path / "corpus", config=TINY)


def test_a_long_training_text_keeps_its_head_and_its_tail(tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    text = "I waited for ages at reception. " * 100 + "I will burn your car"
    [ids] = encode(tokenizer, [text], TrainConfig(max_tokens=64, head_tokens=16))
    assert len(ids) == 64
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.decode(ids[-8:-1]).endswith("i will burn your car")


POSTS = [[101, 7, 7, 102], [101, 8, 8, 8, 102], [101, 9, 102]]  # [CLS] ... [SEP]; the last is neutral


def test_posts_are_read_beside_a_neutral_post_before_or_after_them() -> None:
    config = TrainConfig(context_rate=1.0, max_tokens=64)
    seen = set()
    for seed in range(20):
        sequences = with_context(POSTS, [2], config, np.random.default_rng(seed))
        assert len(sequences) == len(POSTS)
        for post, sequence in zip(POSTS, sequences, strict=True):
            assert sequence in ([101, 9, *post[1:]], [*post[:-1], 9, 102])
            seen.add(sequence[1] == 9)
    assert seen == {True, False}


def test_posts_too_long_for_a_neutral_post_beside_them_stay_alone() -> None:
    sequences = with_context(
        POSTS, [2], TrainConfig(context_rate=1.0, max_tokens=4), np.random.default_rng(0)
    )
    assert sequences == [POSTS[0], POSTS[1], [101, 9, 9, 102]]


def test_no_post_is_joined_when_the_context_rate_is_zero() -> None:
    assert with_context(POSTS, [2], TrainConfig(context_rate=0.0), np.random.default_rng(0)) == POSTS
