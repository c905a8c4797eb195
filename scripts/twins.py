"""Write the notebook twin of every Markdown chapter of the book (book/NAME.md -> book/NAME.ipynb).

    python scripts/twins.py            # write the twins that differ from their chapter
    python scripts/twins.py --check    # list the stale ones and exit 1 (tests/test_notebooks.py)

The chapters are MyST Markdown notebooks: the book builds them, and the launch buttons (Colab,
Binder) open their twins, the same cells as an .ipynb without outputs (Jupytext's conversion).
The build ignores the twins (``exclude_patterns`` in _config.yml): the .md is the source.
"""

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]


def chapters() -> list[Path]:
    """The Markdown chapters that are notebooks (a Jupytext header and code cells)."""
    return sorted(p for p in (ROOT / "book").glob("*.md")
                  if p.read_text().startswith("---\njupytext:") and "```{code-cell}" in p.read_text())


def twin(md: Path) -> str:
    nb = jupytext.read(md)
    nb.metadata.pop("jupytext", None)  # a plain notebook: Colab has no Jupytext, and no pairing is implied
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"  # stable ids (nbformat draws random ones): the same chapter, the same file
    return nbformat.writes(nb) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only list the twins that differ from their chapter")
    args = p.parse_args()
    stale = [md for md in chapters() if not md.with_suffix(".ipynb").is_file()
             or md.with_suffix(".ipynb").read_text() != twin(md)]
    for md in stale:
        if args.check:
            print(f"{md.with_suffix('.ipynb').relative_to(ROOT)} is not {md.name} as a notebook: "
                  f"run python scripts/twins.py", file=sys.stderr)
        else:
            md.with_suffix(".ipynb").write_text(twin(md))
            print(f"wrote {md.with_suffix('.ipynb').relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
