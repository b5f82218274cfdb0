"""One rule for when two class names are the same class, and one spelling for its folder.

Users type class names by hand and name folders by habit: `hot dog`, `hot_dog`
and `HOT-DOG` must be one class, whether they are folder names of a training
set, the `classes` of a sort job or a label asked for in a request. Every part
of the product compares names through `normalise_class`, never with `==`, and
names a class's folder with `normalise` (`hot_dog`): letters, digits and single
underscores, at most 64 characters, never `unmatched` (the folder for images
no class took), so a class name is always a safe folder name in a space.
"""

from __future__ import annotations

import re
import unicodedata

from common.core import errors

_SEPARATORS = re.compile(r"[\s_-]+")
_CANONICAL = re.compile(r"\w+")
RESERVED = frozenset({"unmatched"})
MAX_LENGTH = 64


def normalise_class(name: str) -> str:
    """The comparison key of a class name: Unicode-normalised (NFKC), case-folded, and every run of
    spaces, underscores and hyphens made one space, trimmed at both ends."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return _SEPARATORS.sub(" ", folded).strip()


def normalise(name: object) -> str:
    """The canonical (folder) form of a class name, or a 400 that says what a class name may be."""
    if not isinstance(name, str):
        raise errors.BadRequest(f"Class {name!r} must be a string.", code="invalid_class")
    canonical = normalise_class(name).replace(" ", "_")
    if not canonical or len(canonical) > MAX_LENGTH or not _CANONICAL.fullmatch(canonical) \
            or canonical in RESERVED:
        raise errors.BadRequest(
            f"Class {name[:80]!r} is not allowed: use letters, digits, spaces, '_' or '-' (at most {MAX_LENGTH} "
            "characters), and not 'unmatched'.", code="invalid_class")
    return canonical


def unique(names: list[str]) -> list[str]:
    """Canonical names in the order given; a class named twice (in any spelling) is a 400."""
    canonical = [normalise(n) for n in names]
    if len(set(canonical)) != len(canonical):
        raise errors.BadRequest("Each class may be named only once (hot dog, hot_dog and HOT-DOG are one class).",
                                code="invalid_classes")
    return canonical
