"""What an install holds on disk, by distribution: the table in docs/install.md.

Every top-level entry of the venv's site-packages is charged to the distribution whose RECORD lists files under
it (a package folder, its ``.libs`` folder, its ``.dist-info``); sizes are disk usage (allocated blocks, as
``du``), in MiB.

    python -m benchmarks.install_size VENV
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path


def disk_mb(path: Path) -> float:
    """Disk usage of a file or folder (links not followed), MiB."""
    files = [path] if not path.is_dir() or path.is_symlink() else [path, *path.rglob("*")]
    return sum(f.lstat().st_blocks * 512 for f in files) / 2**20


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise SystemExit(f"{venv}: expected one lib/python3*/site-packages, found {len(found)}")
    return found[0]


def by_distribution(site: Path) -> dict[str, float]:
    """MiB per distribution name; entries no RECORD lists are charged to "(unlisted) NAME"."""
    owner: dict[str, str] = {}
    for info in site.glob("*.dist-info"):
        name = info.name.split("-")[0].lower().replace("_", "-")
        owner[info.name] = name
        record = info / "RECORD"
        if record.is_file():
            for row in csv.reader(record.read_text().splitlines()):
                if row and not row[0].startswith(".."):
                    owner.setdefault(Path(row[0]).parts[0], name)
    sizes: dict[str, float] = defaultdict(float)
    for entry in site.iterdir():
        sizes[owner.get(entry.name, f"(unlisted) {entry.name}")] += disk_mb(entry)
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv", type=Path)
    parser.add_argument("--top", type=int, default=15, help="rows before 'the rest'")
    args = parser.parse_args()
    site = site_packages(args.venv)
    sizes = by_distribution(site)
    rows = list(sizes.items())
    print("| distribution | MiB |\n|---|---|")
    for name, mb in rows[: args.top]:
        print(f"| {name} | {mb:.0f} |")
    rest = rows[args.top:]
    if rest:
        print(f"| the rest ({len(rest)} distributions) | {sum(mb for _, mb in rest):.0f} |")
    print(f"| **site-packages** | **{disk_mb(site):.0f}** |")
    print(f"venv total: {disk_mb(args.venv):.0f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
