from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from classifier.corpus import (
    CORPUS_DIR,
    CorpusError,
    Example,
    leaks,
    near_duplicate_pairs,
    read_jsonl,
    split,
    text_key,
)
from classifier.metrics import FOCUS
from tests.classifier.conftest import make_corpus, tiny_examples


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_it_reads_examples_and_puts_labels_in_canonical_order(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.jsonl",
        json.dumps({"text": "useless idiot lost my bloods", "labels": ["critical", "abusive"]}),
        "",
        json.dumps({"text": "flu clinic on saturday", "labels": []}),
    )
    examples = read_jsonl(path)
    assert [e.labels for e in examples] == [("abusive", "critical"), ()]
    assert examples[1].source == f"{path}:3"


def test_every_bad_line_is_named_with_its_number_and_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.jsonl",
        json.dumps({"text": "fine", "labels": []}),
        '{"text": "broken", "labels": [}',
        json.dumps({"text": "x", "labels": ["rude"]}),
        json.dumps({"text": "", "labels": []}),
        json.dumps({"text": "x", "labels": "threat"}),
        json.dumps({"text": "x", "labels": [], "colour": "red"}),
        json.dumps(["not", "an", "object"]),
    )
    with pytest.raises(CorpusError) as error:
        read_jsonl(path, functional=False)
    message = str(error.value)
    assert "6 bad line(s)" in message
    assert f"{path}:2: not valid JSON" in message
    assert f"{path}:3: unknown label(s) rude" in message
    assert f'{path}:4: "text" must be a non-empty string' in message
    assert f'{path}:5: "labels" must be a list' in message
    assert f"{path}:6: unknown field(s) colour" in message
    assert f"{path}:7: expected a JSON object" in message


def test_functional_cases_must_name_their_function(tmp_path: Path) -> None:
    path = write(tmp_path / "f.jsonl", json.dumps({"text": "not once was she rude", "labels": ["praise"]}))
    with pytest.raises(CorpusError, match=r"f.jsonl:1: \"function\" must name"):
        read_jsonl(path, functional=True)


def test_near_duplicates_are_found_despite_case_punctuation_and_a_swapped_word() -> None:
    texts = [
        "Dr Patel at Meanwood surgery was so rude to my mum today",
        "dr patel at meanwood surgery was SO rude to my dad today!!",
        "Thank you to the whole reception team at Chapel Allerton",
        "the surgeon cut out the tumour and she is recovering well",
    ]
    assert near_duplicate_pairs(texts) == [(0, 1)]


def test_the_split_is_deterministic_stratified_and_keeps_near_duplicates_together() -> None:
    examples = [Example(str(row["text"]), tuple(row["labels"])) for row in tiny_examples()]  # type: ignore[arg-type]
    copies = [Example(e.text.replace("again", "AGAIN!"), e.labels) for e in examples[:10]]
    first = split(examples + copies)
    assert first == split(examples + copies)
    assert sum(len(part) for part in first.values()) == len(examples) + len(copies)
    for name, other in [("train", "dev"), ("train", "test"), ("dev", "test")]:
        assert leaks(first[name], first[other]) == [], (name, other)
    shares = {name: len(part) / (len(examples) + len(copies)) for name, part in first.items()}
    assert 0.7 <= shares["train"] <= 0.9 and shares["dev"] > 0 and shares["test"] > 0
    for label in ("threat", "abusive", "critical", "praise"):
        where = Counter(name for name, part in first.items() for e in part if label in e.labels)
        assert 0.6 <= where["train"] / where.total() <= 0.9, (label, where)


def test_a_post_that_nearly_copies_a_functional_case_never_goes_to_train() -> None:
    examples = [Example(str(row["text"]), tuple(row["labels"])) for row in tiny_examples()]  # type: ignore[arg-type]
    functional = [Example(examples[0].text + " !!", examples[0].labels, "quoting")]
    result = split(examples, functional)
    assert examples[0] in result["test"]
    assert leaks(result["train"], functional) == []


def test_posts_already_split_stay_where_they_were_in_their_order_when_new_posts_arrive() -> None:
    examples = [Example(str(row["text"]), tuple(row["labels"])) for row in tiny_examples()]  # type: ignore[arg-type]
    old = examples
    new = [
        Example("Parking at the Grange surgery is a nightmare on Tuesdays", ("critical",)),
        Example("Flu jabs for over 65s start next week at Hollins Lane", ()),
        Example("Massive thanks to the district nurses who looked after grandad", ("praise",)),
        Example("If you touch my kids' prescriptions again I will burn your car", ("threat",)),
    ]
    first = split(old)
    previous = {text_key(e.text): name for name, part in first.items() for e in part}
    second = split(old + new, previous=previous)
    for name, part in first.items():
        assert second[name][: len(part)] == part, name
    assert sum(len(part) for part in second.values()) == len(old) + len(new)


def test_a_new_post_joins_the_split_of_the_old_post_it_nearly_copies() -> None:
    examples = [Example(str(row["text"]), tuple(row["labels"])) for row in tiny_examples()]  # type: ignore[arg-type]
    first = split(examples)
    target = first["dev"][0]
    copy = Example(target.text + " honestly", target.labels)
    previous = {text_key(e.text): name for name, part in first.items() for e in part}
    assert copy in split([*examples, copy], previous=previous)["dev"]


def test_the_same_text_with_two_different_labellings_is_an_error() -> None:
    examples = [
        Example("She is a useless cow", ("abusive",), source="a.jsonl:1"),
        Example("she is a useless cow", (), source="b.jsonl:9"),
    ]
    with pytest.raises(CorpusError, match=r"b.jsonl:9: same text as a.jsonl:1"):
        split(examples)


def test_split_corpus_writes_every_split_and_the_functional_set(tmp_path: Path) -> None:
    root = make_corpus(tmp_path)
    sizes = {name: len(read_jsonl(root / f"{name}.jsonl")) for name in ("train", "dev", "test", "functional")}
    assert sizes["train"] + sizes["dev"] + sizes["test"] == len(tiny_examples())
    assert sizes["functional"] == 4


def committed(name: str) -> list[Example]:
    path = CORPUS_DIR / f"{name}.jsonl"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `vigil model split`")
    return read_jsonl(path)


def test_the_committed_splits_share_no_near_duplicates() -> None:
    train, dev, test = committed("train"), committed("dev"), committed("test")
    assert leaks(train, dev) == []
    assert leaks(train, test) == []
    assert leaks(dev, test) == []


def test_no_functional_case_nearly_copies_a_training_post() -> None:
    assert leaks(committed("train"), committed("functional")) == []


def test_no_held_out_post_nearly_copies_a_corpus_post() -> None:
    held_out = read_jsonl(CORPUS_DIR / "heldout" / "independent.jsonl", functional=False)
    corpus = [e for name in ("train", "dev", "test", "functional") for e in committed(name)]
    assert leaks(corpus, held_out) == []


def test_the_functional_dev_set_nearly_copies_no_corpus_or_evaluation_post() -> None:
    functional_dev = read_jsonl(CORPUS_DIR / "functional_dev.jsonl", functional=True)
    held_out = read_jsonl(CORPUS_DIR / "heldout" / "independent.jsonl", functional=False)
    others = [e for name in ("train", "dev", "test", "functional") for e in committed(name)] + held_out
    assert leaks(others, functional_dev) == []
    functions = Counter(e.function for e in functional_dev)
    assert set(functions) == set(FOCUS) and min(functions.values()) >= 20, functions


def test_the_committed_corpus_is_large_enough_and_covers_every_label() -> None:
    examples = committed("train") + committed("dev") + committed("test")
    assert len(examples) >= 3000
    counts = Counter(label for e in examples for label in e.labels or ("neutral",))
    assert min(counts.values()) >= 200, counts
    functions = Counter(e.function for e in committed("functional"))
    assert len(functions) >= 10 and min(functions.values()) >= 10, functions
