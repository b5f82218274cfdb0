"""One spelling per class: `hot dog`, `hot_dog` and `HOT-DOG` are one class and one folder, `hot_dog`.

Class names become folder names in the caller's space, so the canonical form
is also what keeps them safe there: letters, digits and single underscores,
at most 64 characters, never `unmatched` (the folder for images no class took).
"""

from __future__ import annotations

import re

from common import errors

RESERVED = frozenset({"unmatched"})
MAX_LENGTH = 64
_SEPARATORS = re.compile(r"[\s_-]+")
_CANONICAL = re.compile(r"\w+")


def normalise(name: object) -> str:
    """The canonical form of a class name, or a 400 that says what a class name may be."""
    if not isinstance(name, str):
        raise errors.BadRequest(f"Class {name!r} must be a string.", code="invalid_class")
    canonical = _SEPARATORS.sub("_", name.strip().lower()).strip("_")
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
