"""The simulated-time figures of docs/benchmarks.md are regenerated and must match.

A change to pacing that moves a figure fails here until ``scripts/bench --update-docs matrix``
writes the new figures into the docs, in the same commit.
"""

from __future__ import annotations

from benchmarks import docs, matrix


def test_the_fast_matrix_in_the_docs_is_current() -> None:
    """The fast subset of the network-model matrix, run again, gives the table in the docs."""
    text = docs.DOCS.read_text(encoding="utf-8")
    assert "matrix-fast" in docs.markers(text)
    assert docs.fill(text, matrix.fast_tables()) == text, (
        "docs/benchmarks.md is stale: run scripts/bench --update-docs matrix"
    )


def test_markers_are_filled_and_others_left_alone() -> None:
    """Only the named blocks change; unknown names and the text around stay as they are."""
    text = (
        "intro\n<!-- bench:a start -->\nold\n<!-- bench:a end -->\nmiddle\n"
        "<!-- bench:b start -->\nkept\n<!-- bench:b end -->\n"
    )
    filled = docs.fill(text, {"a": "| new |", "c": "| unused |"})
    assert filled == text.replace("old", "| new |")
    assert docs.markers(filled) == {"a", "b"}
