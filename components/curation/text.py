"""Caption checks: normalisation, length, character set and a small English-likeness test.

Why heuristics and no language model: the pipeline runs offline with nothing downloaded, and
what we need to drop from alt-text style captions is mostly obvious (mojibake, non-Latin
scripts, strings of digits or tags, other languages). Each check is one number with a
threshold in params.yaml, so a reader can tell why a caption went.
"""
from __future__ import annotations

import re
import string
from typing import Iterable

__all__ = ["normalize", "word_count", "words", "length_reason", "ascii_ratio", "letter_ratio",
           "english_ratio", "known_words", "ENGLISH_WORDS"]

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_PRINTABLE = frozenset(string.printable)
_LETTERS = frozenset(string.ascii_letters)

# Function words plus frequent caption words (scenes, people, colours, counts, positions).
# A caption counts as English-like when enough of its words are here or in the class vocabulary.
ENGLISH_WORDS = frozenset("""
a an the this that these those there here it its is are was were be been being am has have had
do does did of in on at to for from with without by about above below over under between into
onto out up down off near next behind front beside inside outside around through across along
and or but not no nor so as than then very too also just only some any each every all both few
many much more most other another such own same one two three four five six seven eight nine ten
eleven twelve first second last i you he she we they me him her us them my your his our their
who what which where when why how while can could will would should may might must shall
image picture photo photograph view scene shot close closeup background foreground top bottom
left right side middle centre center corner edge part group pair set lot row
small large big little tiny huge tall short long wide narrow round flat dark light bright
red green blue yellow orange purple pink white black gray grey brown cyan colour color colored
coloured striped plain dense cluster shape shapes object objects largest smallest full empty
man men woman women person people boy girl child children baby dog cat bird horse car bus train
street road table room house building tree trees water sky grass field beach city window door
sitting standing walking holding looking playing riding eating wearing lying sits stands shows
showing appears filled fills covered made
""".split())


def normalize(caption: str) -> str:
    """Lowercase with runs of whitespace collapsed to one space, ends stripped: the key that
    duplicate-caption removal compares."""
    return _SPACE.sub(" ", caption).strip().lower()


def word_count(caption: str) -> int:
    """Whitespace-separated words (what ``curation.caption_words`` bounds)."""
    return len(caption.split())


def words(caption: str) -> list[str]:
    """Lowercase alphabetic words (apostrophes inside kept: ``dog's``)."""
    return [w.lower() for w in _WORD.findall(caption)]


def length_reason(caption: str, word_bounds: tuple[int, int],
                  char_bounds: tuple[int, int]) -> str | None:
    """``caption_too_short`` / ``caption_too_long`` by words or characters, else None.

    Characters are counted on the caption with outer whitespace stripped."""
    n_words, n_chars = word_count(caption), len(caption.strip())
    if n_words < word_bounds[0] or n_chars < char_bounds[0]:
        return "caption_too_short"
    if n_words > word_bounds[1] or n_chars > char_bounds[1]:
        return "caption_too_long"
    return None


def ascii_ratio(caption: str) -> float:
    """Printable-ASCII characters / all characters (1.0 for an empty string)."""
    return sum(c in _PRINTABLE for c in caption) / len(caption) if caption else 1.0


def letter_ratio(caption: str) -> float:
    """ASCII letters / non-whitespace characters (0.0 when there are none)."""
    chars = [c for c in caption if not c.isspace()]
    return sum(c in _LETTERS for c in chars) / len(chars) if chars else 0.0


def known_words(extra: Iterable[str] = ()) -> frozenset[str]:
    """:data:`ENGLISH_WORDS` plus the lowercase words of ``extra`` (class names, plurals)."""
    return ENGLISH_WORDS | frozenset(w for e in extra for w in words(e))


def english_ratio(caption: str, known: frozenset[str] = ENGLISH_WORDS) -> float:
    """Share of the caption's words in ``known`` (see :func:`known_words`); 0.0 for a caption
    without alphabetic words."""
    found = words(caption)
    return sum(w in known for w in found) / len(found) if found else 0.0
