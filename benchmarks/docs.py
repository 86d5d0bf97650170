"""Write benchmark tables into the documentation, between marker comments.

A benchmark module may expose ``tables() -> dict[str, str]`` (NAME -> markdown table); every
``<!-- bench:NAME start -->`` ... ``<!-- bench:NAME end -->`` block of the pages in ``PAGES``
whose NAME is returned gets that table (a table may appear on several pages). Figures in the docs are thus produced by the code that measures
them, never typed. ``scripts/bench --update-docs [names]`` runs this.

Run: ``scripts/run python benchmarks/docs.py [module ...]`` (default: every module with tables).
"""

from __future__ import annotations

import importlib
from pathlib import Path
import re
import sys

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
PAGES = (DOCS, ROOT / "docs" / "reliability.md", ROOT / "README.md")
"""Every page that carries generated tables."""
_BLOCK = re.compile(
    r"(?P<open><!-- bench:(?P<name>[\w-]+) start -->\n).*?(?P<close><!-- bench:(?P=name) end -->)",
    re.DOTALL,
)


def fill(text: str, tables: dict[str, str]) -> str:
    """``text`` with every marked block whose name is in ``tables`` replaced by its table."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in tables:
            return match[0]
        return f"{match['open']}{tables[name].rstrip()}\n{match['close']}"

    return _BLOCK.sub(replace, text)


def markers(text: str) -> set[str]:
    """Names of the marked blocks in ``text``."""
    return {match["name"] for match in _BLOCK.finditer(text)}


def update(modules: list[str], pages: tuple[Path, ...] = PAGES) -> list[str]:
    """Run ``tables()`` of each module and write the results; returns the names written."""
    sys.path.insert(0, str(ROOT))
    tables: dict[str, str] = {}
    for name in modules:
        module = importlib.import_module(f"benchmarks.{name}")
        produce = getattr(module, "tables", None)
        if produce is not None:
            tables.update(produce())
    placed: set[str] = set()
    for path in pages:
        text = path.read_text(encoding="utf-8")
        placed |= set(tables) & markers(text)
        path.write_text(fill(text, tables), encoding="utf-8")
    missing = sorted(set(tables) - placed)
    if missing:  # a new benchmark's tables wait for their place in a page
        print(f"No page has markers for: {', '.join(missing)}", file=sys.stderr)
    return sorted(placed)


def _with_tables() -> list[str]:
    return [
        script.stem
        for script in sorted((ROOT / "benchmarks").glob("*.py"))
        if script.stem != "docs" and "\ndef tables(" in script.read_text(encoding="utf-8")
    ]


if __name__ == "__main__":
    written = update(sys.argv[1:] or _with_tables())
    print(f"Updated tables: {', '.join(written) or 'nothing'}")
