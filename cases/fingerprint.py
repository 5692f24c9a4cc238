"""Near-identical wording: MinHash over character shingles, with the names of the targets masked.

A coordinated campaign posts the same allegation about several members, changing little but the
name. Masking the matched names (and links and handles) before shingling makes those posts near
copies of each other, while complaints that are merely alike ("could not get an appointment")
share common words but few 6-character runs. Posts shorter than a few words are never compared:
short insults are alike by chance.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from datasketch import LeanMinHash, MinHash, MinHashLSH

SHINGLE_CHARS = 6
NUM_PERM = 128
MASK = "§"
_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"(?<!\w)(?:@|u/)[\w.\-]+(?:@[\w.\-]+)?")
_PUNCTUATION = re.compile(rf"[^\w{MASK}' ]+")


def normalise(text: str, names: Iterable[str]) -> str:
    """Lower-case words with the targets' names, links, handles and punctuation masked or removed."""
    text = text.lower()
    for name in sorted({n.lower() for n in names if n.strip()}, key=len, reverse=True):
        text = text.replace(name, f" {MASK} ")
    text = _URL.sub(" ", text)
    text = _HANDLE.sub(f" {MASK} ", text)
    text = _PUNCTUATION.sub(" ", text)
    return " ".join(text.split())


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
    """An LSH index over posts (id → normalised text) answering "which posts are near copies of this"."""

    def __init__(self, texts: Mapping[int, str], threshold: float, min_words: int) -> None:
        self.threshold = threshold
        self.texts = {key: text for key, text in texts.items() if word_count(text) >= min_words}
        # Candidates are found generously (recall matters more than the few extra exact checks),
        # then each one is checked against the threshold itself.
        self.index = MinHashLSH(threshold=max(0.05, threshold * 0.8), num_perm=NUM_PERM, weights=(0.2, 0.8))
        for key, text in self.texts.items():
            self.index.insert(key, fingerprint(text), check_duplication=False)

    def neighbours(self, key: int) -> set[int]:
        """Posts whose estimated similarity to ``key`` reaches the threshold (LSH candidates, verified)."""
        text = self.texts.get(key)
        if text is None:
            return set()
        mine = fingerprint(text)
        return {
            other
            for other in self.index.query(mine)
            if other != key and mine.jaccard(fingerprint(self.texts[other])) >= self.threshold
        }
