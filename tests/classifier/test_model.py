from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from classifier.meta import ModelError
from classifier.model import FullRangeLinear, get_classifier, load_classifier
from tests.classifier.conftest import tiny_settings

LONG_CALM_STORY = "I rang at eight and waited in the queue for forty minutes before anyone answered. " * 40


def test_a_missing_model_says_how_to_train_one(tmp_path: Path, tiny_base: Path) -> None:
    with pytest.raises(ModelError, match=r"no trained model in .*: run `vigil model train`"):
        load_classifier(tiny_settings(tmp_path, tiny_base))


def test_the_trained_model_loads_with_its_version_thresholds_and_labels(tiny_model: Path) -> None:
    settings = tiny_settings(tiny_model.parent, Path("unused"), classifier__precision="fp32")
    classifier = load_classifier(settings)
    assert classifier.model_id == "vigil"
    assert classifier.version.endswith("-fp32") and len(classifier.version) == 16 + 5
    assert classifier.labels == ("threat", "abusive", "critical", "praise")
    assert set(classifier.thresholds) == set(classifier.labels)
    assert torch.get_num_threads() == 1


def test_a_long_text_is_read_in_overlapping_windows_up_to_its_last_token(tiny_model: Path) -> None:
    settings = tiny_settings(tiny_model.parent, Path("unused"), classifier__window_tokens=64)
    classifier = load_classifier(settings.with_overrides(classifier__window_overlap=16))
    text = LONG_CALM_STORY + "I know where you live Dr Patel."
    windows = classifier.windows([text, "short one"])
    ours = [ids for index, ids in windows if index == 0]
    assert len(ours) > 10 and all(len(ids) <= 64 for ids in ours)
    last = classifier.tokenizer.decode(ours[-1])
    assert "i know where you live dr patel" in last
    assert [index for index, _ in windows].count(1) == 1
    # The text's score for each label is its highest window's.
    whole = classifier.probabilities([text])[0]
    per_window = classifier.probabilities([classifier.tokenizer.decode(ids[1:-1]) for ids in ours])
    assert np.allclose(whole, per_window.max(axis=0), atol=1e-4)


def test_batching_and_sorting_by_length_do_not_change_any_score(tiny_model: Path) -> None:
    settings = tiny_settings(tiny_model.parent, Path("unused"), classifier__precision="fp32")
    texts = ["hi", LONG_CALM_STORY[:300], "thank you dr okafor", "x " * 40, "the surgeon cut out the tumour"]
    batched = load_classifier(settings.with_overrides(classifier__batch_size=4)).scores(texts)
    alone = load_classifier(settings.with_overrides(classifier__batch_size=1)).scores(texts)
    assert np.allclose(batched, alone, atol=1e-5)


@pytest.mark.parametrize("engine", ["x86", "onednn"])
def test_int8_quantises_every_linear_layer_and_keeps_scores_close(
    tiny_model: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("classifier.model.int8_engine", lambda: engine)
    monkeypatch.setattr(torch.backends.quantized, "engine", torch.backends.quantized.engine)  # restored after
    fp32 = load_classifier(tiny_settings(tiny_model.parent, Path("unused"), classifier__precision="fp32"))
    int8 = load_classifier(tiny_settings(tiny_model.parent, Path("unused"), classifier__precision="int8"))
    assert int8.precision == "int8" and int8.version.endswith("-int8")
    assert torch.backends.quantized.engine == engine
    modules = list(int8.model.modules())
    assert not any(type(m) is torch.nn.Linear for m in modules)
    assert any(isinstance(m, DynamicLinear) for m in modules)
    texts = ["thank you dr okafor", "you useless cow", "clinic closed monday"]
    assert np.abs(fp32.scores(texts) - int8.scores(texts)).max() < 0.05


@pytest.mark.parametrize(("vnni", "widest"), [(True, 128), (False, 64)])
def test_int8_weights_give_up_a_bit_only_where_16_bit_sums_could_overflow(
    tiny_model: Path, vnni: bool, widest: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("classifier.model.has_vnni", lambda: vnni)
    int8 = load_classifier(tiny_settings(tiny_model.parent, Path("unused"), classifier__precision="int8"))
    layers = [m for m in int8.model.modules() if isinstance(m, DynamicLinear)]
    assert layers and all(isinstance(m, FullRangeLinear) for m in layers)  # activations keep 8 bits
    weights = torch.cat([m.weight().int_repr().flatten().int() for m in layers])
    assert weights.abs().max().item() == widest


def test_auto_precision_follows_what_training_measured(tiny_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    settings = tiny_settings(tmp_path, Path("unused"))  # its model_dir is tmp_path / "model"
    for int8_ok, expected in [(True, "int8"), (False, "fp32")]:
        meta = json.loads((copy / "vigil.json").read_text())
        (copy / "vigil.json").write_text(json.dumps({**meta, "int8_ok": int8_ok}))
        classifier = load_classifier(settings)
        assert classifier.precision == expected
        assert classifier.thresholds == meta["thresholds"][expected]


def test_predictions_carry_every_score_and_the_labels_over_their_thresholds(tiny_model: Path) -> None:
    classifier = load_classifier(tiny_settings(tiny_model.parent, Path("unused")))
    classifier.thresholds = {"threat": 0.0, "abusive": 1.1, "critical": 0.0, "praise": 1.1}
    [prediction] = classifier.predict(["I will wait for you outside the surgery"])
    assert set(prediction.scores) == {"threat", "abusive", "critical", "praise"}
    assert prediction.labels == ("threat", "critical")
    assert classifier.predict([]) == []


def test_a_foreign_model_is_read_through_the_label_map(tmp_path: Path, foreign_model: Path) -> None:
    settings = tiny_settings(
        tmp_path,
        Path("unused"),
        classifier__model=str(foreign_model),
        classifier__label_map={"offensive": ["abusive"], "hateful": ["abusive"], "positive": ["praise"]},
        classifier__threshold=0.3,
    )
    classifier = load_classifier(settings)
    assert classifier.labels == ("abusive", "praise")
    assert classifier.model_id == str(foreign_model)
    assert classifier.thresholds == {"abusive": 0.3, "praise": 0.3}
    texts = ["you useless cow", "thank you doctor"]
    probs = classifier.probabilities(texts)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)  # a single-label model: softmax
    scores = classifier.scores(texts)
    assert np.allclose(scores[:, 0], probs[:, [1, 2]].max(axis=1))
    assert np.allclose(scores[:, 1], probs[:, 3])
    again = load_classifier(settings)
    assert again.version == classifier.version
    other = load_classifier(settings.with_overrides(classifier__threshold=0.4))
    assert other.version != classifier.version


@pytest.mark.parametrize(
    ("label_map", "message"),
    [
        ({"toxic": ["abusive"]}, "names 'toxic', which the model does not output"),
        ({"offensive": ["rude"]}, "maps 'offensive' to 'rude', not a Vigil label"),
        ({}, "classifier.label_map is empty"),
    ],
)
def test_a_label_map_that_does_not_fit_the_model_is_a_clear_error(
    tmp_path: Path, foreign_model: Path, label_map: dict[str, list[str]], message: str
) -> None:
    settings = tiny_settings(
        tmp_path, Path("unused"), classifier__model=str(foreign_model), classifier__label_map=label_map
    )
    with pytest.raises(ModelError, match=message):
        load_classifier(settings)


def test_one_model_is_loaded_per_process_and_settings(tiny_model: Path) -> None:
    settings = tiny_settings(tiny_model.parent, Path("unused"))
    assert get_classifier(settings) is get_classifier(settings)
    assert get_classifier(settings.with_overrides(classifier__batch_size=7)).batch_size == 7
