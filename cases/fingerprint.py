"""Near-identical wording: MinHash over character shingles, with the names of the targets masked.

A coordinated campaign posts the same allegation about several members, changing little but the
name. Folding the text as the collector's matcher does (``collector.normalise.fold``: case,
accents, look-alike letters, zero-width characters, leetspeak) and masking the matched names (and
links and handles) before shingling makes those posts near copies of each other, however their
characters are disguised to dodge filters, while complaints that are merely alike ("could not get
an appointment") share common words but few 6-character runs. Posts shorter than a few words are
never compared: short insults are alike by chance.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache

from datasketch import LeanMinHash, MinHash, MinHashLSH

from collector.normalise import fold

SHINGLE_CHARS = 6
NUM_PERM = 128
MASK = "§"
_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"(?<!\w)(?:@|u/)[\w.\-]+(?:@[\w.\-]+)?")
_PUNCTUATION = re.compile(rf"[^\w{MASK}' ]+")
_HANDLE_WORD = "zzvigilhandlezz"  # a handle's stand-in that fold() keeps; masked after folding


def normalise(text: str, names: Iterable[str]) -> str:
    """The post's folded words, with the targets' names, links and handles masked and punctuation
    dropped. Handles go before folding, which would split "u/name" into two words."""
    text = fold(_HANDLE.sub(f" {_HANDLE_WORD} ", _URL.sub(" ", text)))
    masker = name_masker(tuple(names))
    if masker is not None:
        text = masker.sub(f" {MASK} ", text)
    text = _PUNCTUATION.sub(" ", text.replace(_HANDLE_WORD, MASK))
    return " ".join(text.split())


@lru_cache(maxsize=16384)
def name_masker(names: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern for every form of the names, folded as the post is, longest first (cached:
    passes see the same posts many times). A ``matched_text`` gives an entity named in several
    forms as "Dr Amira Hassan; Dr Hassan": each form is masked."""
    forms = sorted({fold(form) for name in names for form in name.split("; ")} - {""}, key=len, reverse=True)
    if not forms:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(map(re.escape, forms))})(?!\w)")


def word_count(normalised: str) -> int:
    return sum(1 for word in normalised.split() if word != MASK)


@lru_cache(maxsize=65536)
def fingerprint(normalised: str) -> LeanMinHash:
    """The MinHash of a normalised text (cached: detection passes see the same posts many times)."""
    shingles = {normalised[i : i + SHINGLE_CHARS] for i in range(max(1, len(normalised) - SHINGLE_CHARS + 1))}
    minhash = MinHash(num_perm=NUM_PERM, seed=7)
    minhash.update_batch([s.encode("utf-8") for s in shingles])
    return LeanMinHash(minhash)


def similarity(a: str, b: str) -> float:
    """Estimated Jaccard similarity of two normalised texts' shingle sets."""
    return float(fingerprint(a).jaccard(fingerprint(b)))


class NearDuplicates:
    """An LSH index of posts (key → normalised text) answering "which posts are near copies of this".

    Detection keeps one per process and updates it each pass with the posts that entered or left
    the campaign window, instead of rebuilding it: hashing every post into every band each pass
    would cost far more than the rest of detection. Keys carry the text, so that an index shared
    by passes over different databases (tests) never confuses two posts with the same id.
    """

    def __init__(self, threshold: float, min_words: int) -> None:
        self.threshold = threshold
        self.min_words = min_words
        # Candidates are found generously (recall matters more than the few extra exact checks),
        # then each one is checked against the threshold itself.
        self.index = MinHashLSH(threshold=max(0.05, threshold * 0.8), num_perm=NUM_PERM, weights=(0.2, 0.8))
        self.keys: set[tuple[int, str]] = set()
        self.lock = threading.Lock()

    def near_copies(self, texts: Mapping[int, str], of: Iterable[int]) -> dict[int, set[int]]:
        """For each post in ``of``, the posts of ``texts`` whose similarity reaches the threshold."""
        with self.lock:
            self._update(texts)
            return {key: self._neighbours(key, texts) for key in of}

    def _update(self, texts: Mapping[int, str]) -> None:
        wanted = {(key, text) for key, text in texts.items() if word_count(text) >= self.min_words}
        for gone in self.keys - wanted:
            self.index.remove(gone)
        for new in wanted - self.keys:
            self.index.insert(new, fingerprint(new[1]), check_duplication=False)
        self.keys = wanted

    def _neighbours(self, key: int, texts: Mapping[int, str]) -> set[int]:
        text = texts.get(key)
        if text is None or (key, text) not in self.keys:
            return set()
        mine = fingerprint(text)
        return {
            other
            for other, other_text in self.index.query(mine)
            if other != key and mine.jaccard(fingerprint(other_text)) >= self.threshold
        }


@lru_cache(maxsize=8)
def shared_index(threshold: float, min_words: int) -> NearDuplicates:
    """The process's index for these settings (the scheduler's detection job reuses it every run)."""
    return NearDuplicates(threshold, min_words)
