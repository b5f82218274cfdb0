"""One rule for when two class names are the same class.

Users type class names by hand and name folders by habit: `hot dog`, `hot_dog`
and `HOT-DOG` must be one class, whether they are folder names of a training
set, the `classes` of a sort job or a label asked for in a request. Every part
of the product compares names through `normalise_class`, never with `==`.
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s_-]+")


def normalise_class(name: str) -> str:
    """The comparison key of a class name: Unicode-normalised (NFKC), case-folded, and every run of
    spaces, underscores and hyphens made one space, trimmed at both ends."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return _SEPARATORS.sub(" ", folded).strip()
