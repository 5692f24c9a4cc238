"""The labelled corpus: reading and checking JSONL files, and the leak-free train/dev/test split.

Hand-written parts live in ``corpus/parts/*.jsonl`` (``{"text", "labels"}``) and HateCheck-style
functional cases in ``corpus/functional/*.jsonl`` (one more field, ``function``). ``split_corpus``
writes the committed ``train``/``dev``/``test``/``functional`` files. Near-duplicates (the same post
with a word or two changed) are clustered and every cluster goes to one split, because a model
that has seen a near-copy of a test post in training makes the test figures lie; a corpus post
that nearly copies a functional case never goes to train for the same reason.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasketch import MinHash, MinHashLSH

from vigil.errors import VigilError
from vigil.labels import LABELS

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
SPLITS = ("train", "dev", "test")
FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}
SEED = 20261124
# Two texts whose sets of normalised words overlap this much (Jaccard) are near-duplicates.
NEAR_DUPLICATE = 0.5
_WORD = re.compile(r"[a-z0-9@#*!$']+")


class CorpusError(VigilError):
    """A corpus file is malformed; the message names every bad line."""


@dataclass(frozen=True)
class Example:
    """One labelled text, and where it came from (for error messages and review)."""

    text: str
    labels: tuple[str, ...]
    function: str | None = None
    source: str = ""

    def to_json(self) -> str:
        data: dict[str, object] = {"text": self.text, "labels": list(self.labels)}
        if self.function is not None:
            data["function"] = self.function
        return json.dumps(data, ensure_ascii=False)


def read_jsonl(path: Path, *, functional: bool | None = None) -> list[Example]:
    """Read and check one JSONL file; raise one error listing every bad line (``file:line: why``).

    ``functional=True`` requires a ``function`` field, ``False`` forbids it, ``None`` allows both.
    """
    examples: list[Example] = []
    errors: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            examples.append(_parse_line(line, functional, f"{path}:{number}"))
        except ValueError as exc:
            errors.append(f"{path}:{number}: {exc}")
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise CorpusError(f"{len(errors)} bad line(s) in {path}:\n" + "\n".join(shown))
    if not examples:
        raise CorpusError(f"{path} holds no examples")
    return examples


def _parse_line(line: str, functional: bool | None, source: str) -> Example:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    allowed = {"text", "labels", "function"} if functional is not False else {"text", "labels"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    text, labels, function = data.get("text"), data.get("labels"), data.get("function")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('"text" must be a non-empty string')
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ValueError('"labels" must be a list of label names (empty for neutral)')
    bad = sorted(set(labels) - set(LABELS))
    if bad:
        raise ValueError(f"unknown label(s) {', '.join(bad)}; expected some of {', '.join(LABELS)}")
    if len(set(labels)) != len(labels):
        raise ValueError("a label is repeated")
    if functional and (not isinstance(function, str) or not function.strip()):
        raise ValueError('"function" must name the functional test this case belongs to')
    ordered = tuple(label for label in LABELS if label in labels)
    return Example(text=text, labels=ordered, function=function, source=source)


def read_many(paths: Iterable[Path], *, functional: bool | None = None) -> list[Example]:
    """Read several files, reporting the errors of all of them at once."""
    examples: list[Example] = []
    errors: list[str] = []
    for path in paths:
        try:
            examples.extend(read_jsonl(path, functional=functional))
        except CorpusError as exc:
            errors.append(str(exc))
    if errors:
        raise CorpusError("\n".join(errors))
    return examples


def write_jsonl(path: Path, examples: Iterable[Example]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(example.to_json() + "\n" for example in examples), encoding="utf-8")


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def words(text: str) -> frozenset[str]:
    """The set of words near-duplicate detection compares (case, accents and punctuation ignored)."""
    return frozenset(_WORD.findall(normalise(text)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicate_pairs(texts: Sequence[str], threshold: float = NEAR_DUPLICATE) -> list[tuple[int, int]]:
    """Index pairs of near-duplicate texts: MinHash LSH finds candidates, exact Jaccard confirms."""
    sets = [words(text) for text in texts]
    lsh = MinHashLSH(threshold=threshold * 0.8, num_perm=128)
    hashes = MinHash.bulk([[w.encode() for w in s] or [b""] for s in sets], num_perm=128, seed=1)
    pairs: set[tuple[int, int]] = set()
    for index, minhash in enumerate(hashes):
        for other in lsh.query(minhash):
            if jaccard(sets[index], sets[other]) >= threshold:
                pairs.add((other, index))
        lsh.insert(index, minhash)
    return sorted(pairs)


def clusters(count: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected groups of indices (union-find), each sorted, in order of their first member."""
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = defaultdict(list)
    for index in range(count):
        groups[root(index)].append(index)
    return sorted(groups.values(), key=lambda group: group[0])


def check_consistent(examples: Sequence[Example]) -> None:
    """The same text must not carry two different sets of labels."""
    seen: dict[str, Example] = {}
    errors: list[str] = []
    for example in examples:
        first = seen.setdefault(text_key(example.text), example)
        if first.labels != example.labels:
            errors.append(
                f"{example.source}: same text as {first.source} but labels "
                f"{list(example.labels)} instead of {list(first.labels)}"
            )
    if errors:
        raise CorpusError(f"{len(errors)} conflicting duplicate(s):\n" + "\n".join(errors))


def split(
    examples: Sequence[Example],
    functional: Sequence[Example] = (),
    seed: int = SEED,
    previous: Mapping[str, str] | None = None,
) -> dict[str, list[Example]]:
    """Split into train/dev/test, stratified by label combination, near-duplicates kept together.

    A cluster that nearly copies a functional case goes to test, so that the functional set
    measures generalisation, not memory. ``previous`` (text key -> split, in file order) keeps
    posts where an earlier split put them, so that adding posts keeps the figures comparable: a new
    post joins the split of the old posts it nearly copies (if they are in two splits, the cluster
    moves to the later one: an evaluation set never loses a post, train never gains one).
    """
    check_consistent(examples)
    previous = previous or {}
    texts = [example.text for example in examples] + [case.text for case in functional]
    groups = clusters(len(texts), near_duplicate_pairs(texts))
    by_key: dict[tuple[str, ...], list[list[int]]] = defaultdict(list)
    placed: dict[str, list[int]] = {name: [] for name in SPLITS}
    for group in groups:
        members = [index for index in group if index < len(examples)]
        if not members:
            continue
        keys = (text_key(examples[index].text) for index in members)
        before = {previous[key] for key in keys if key in previous}
        if len(members) < len(group):
            placed["test"].extend(members)
        elif before:
            # Evaluation sets never lose a post: a cluster that spans splits goes to the later one.
            placed[max(before, key=SPLITS.index)].extend(members)
        else:
            key = Counter(examples[index].labels for index in members).most_common(1)[0][0]
            by_key[key].append(members)

    rng = random.Random(seed)
    result: dict[str, list[Example]] = {name: [examples[i] for i in placed[name]] for name in SPLITS}
    for key in sorted(by_key):
        chosen = by_key[key]
        rng.shuffle(chosen)
        filled = {name: sum(e.labels == key for e in result[name]) for name in SPLITS}
        for members in chosen:
            # Give the cluster to the split furthest below its share of this label combination.
            after = sum(filled.values()) + len(members)
            name = max(SPLITS, key=lambda s: (round(FRACTIONS[s] * after - filled[s], 6), rng.random()))
            filled[name] += len(members)
            result[name].extend(examples[index] for index in members)
    # Old posts keep their place in the files and new ones follow, shuffled: a new round's diff
    # shows only what it adds.
    rank = {key: position for position, key in enumerate(previous)}
    for name in SPLITS:
        rng.shuffle(result[name])
        result[name].sort(key=lambda example: rank.get(text_key(example.text), len(rank)))
    return result


def text_key(text: str) -> str:
    return " ".join(normalise(text).split())


def leaks(first: Sequence[Example], second: Sequence[Example]) -> list[tuple[Example, Example]]:
    """Near-duplicate pairs with one example in each collection (should be none across splits)."""
    texts = [example.text for example in first] + [example.text for example in second]
    return [(first[a], second[b - len(first)]) for a, b in near_duplicate_pairs(texts) if a < len(first) <= b]


def split_corpus(corpus_dir: Path = CORPUS_DIR, seed: int = SEED) -> dict[str, list[Example]]:
    """Read every part and functional file, split (old posts stay put), write the split files."""
    parts = read_many(sorted((corpus_dir / "parts").glob("*.jsonl")), functional=False)
    functional = read_many(sorted((corpus_dir / "functional").glob("*.jsonl")), functional=True)
    result = split(parts, functional, seed, previous_split(corpus_dir))
    for name, examples in result.items():
        write_jsonl(corpus_dir / f"{name}.jsonl", examples)
    write_jsonl(corpus_dir / "functional.jsonl", functional)
    result["functional"] = functional
    return result


def previous_split(corpus_dir: Path) -> dict[str, str]:
    """Which split each already-split post is in (empty on the first split)."""
    found: dict[str, str] = {}
    for name in SPLITS:
        path = corpus_dir / f"{name}.jsonl"
        if path.is_file():
            found.update((text_key(example.text), name) for example in read_jsonl(path))
    return found


def label_counts(examples: Iterable[Example]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for example in examples:
        counts.update(example.labels or ("neutral",))
    return counts
