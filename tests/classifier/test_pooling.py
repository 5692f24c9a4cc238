from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, DistilBertConfig, DistilBertModel

from classifier.pooling import MeanPoolingBertForSequenceClassification, classifier_class
from tests.classifier.conftest import tiny_bert_config


def test_a_trained_vigil_model_is_saved_with_vigils_pooling_architecture(tiny_model: Path) -> None:
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["model_type"] == "vigil-bert-mean-pooling"
    assert config["architectures"] == ["MeanPoolingBertForSequenceClassification"]
    assert config["vigil_pooling"] == "label_attention"


def test_a_saved_model_loads_again_through_the_auto_classes_with_its_learned_attention(
    tiny_model: Path,
) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model)
    assert isinstance(model, MeanPoolingBertForSequenceClassification)
    assert model.attention is not None
    assert model.attention.weight.abs().sum() > 0  # trained away from its zero start, and kept


def test_label_attention_starts_as_the_plain_mean() -> None:
    torch.manual_seed(0)
    mean = MeanPoolingBertForSequenceClassification(tiny_bert_config(num_labels=4)).eval()
    attention = MeanPoolingBertForSequenceClassification(
        tiny_bert_config(num_labels=4), vigil_pooling="label_attention"
    ).eval()
    missing = attention.load_state_dict(mean.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["attention.bias", "attention.weight"]
    ids = torch.tensor([[101, 2000, 2001, 2002, 102, 0], [101, 3000, 3001, 3002, 3003, 102]])
    mask = (ids != 0).long()
    with torch.inference_mode():
        assert torch.allclose(
            mean(input_ids=ids, attention_mask=mask).logits,
            attention(input_ids=ids, attention_mask=mask).logits,
            atol=1e-6,
        )


@pytest.mark.parametrize("pooling", ["mean", "label_attention"])
def test_padding_does_not_change_a_texts_scores(pooling: str) -> None:
    torch.manual_seed(0)
    model = MeanPoolingBertForSequenceClassification(tiny_bert_config(num_labels=4), vigil_pooling=pooling)
    model.eval()
    if model.attention is not None:  # weights away from zero, so that padding could matter
        torch.nn.init.normal_(model.attention.weight, std=1.0)
    short = torch.tensor([[101, 2000, 2001, 102]])
    padded = torch.tensor([[101, 2000, 2001, 102, 0, 0, 0], [101, 3000, 3001, 3002, 3003, 3004, 102]])
    mask = (padded != 0).long()
    with torch.inference_mode():
        alone = model(input_ids=short, attention_mask=torch.ones_like(short)).logits
        batched = model(input_ids=padded, attention_mask=mask).logits
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


def test_only_bert_family_bases_are_given_vigils_pooling(tmp_path: Path, tiny_base: Path) -> None:
    DistilBertModel(DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64)).save_pretrained(tmp_path)
    assert classifier_class(str(tiny_base), "mean") is MeanPoolingBertForSequenceClassification
    assert classifier_class(str(tiny_base), "label_attention") is MeanPoolingBertForSequenceClassification
    assert classifier_class(str(tiny_base), "cls") is AutoModelForSequenceClassification
    assert classifier_class(str(tmp_path), "mean") is AutoModelForSequenceClassification
    assert classifier_class(str(tmp_path), "label_attention") is AutoModelForSequenceClassification
