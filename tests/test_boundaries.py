"""The three parts import only what the README's architecture section allows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "custom_components" / "whatsapp_presence"


def imported(path: Path) -> list[tuple[str, int]]:
    """Every module a file imports, with its relative level (0 = absolute)."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


@pytest.mark.parametrize("part", ["manager", "bridge"])
def test_manager_and_bridge_stay_out_of_home_assistant(part: str) -> None:
    """No Home Assistant import, and nothing from outside their own folder."""
    files = sorted((PACKAGE / part).glob("*.py"))
    assert files
    for path in files:
        for module, level in imported(path):
            assert not module.startswith(("homeassistant", "custom_components")), (path, module)
            assert level <= 1, (path, module)  # ``from ..x``: outside the part


def test_the_manager_knows_nothing_of_the_bridge() -> None:
    """The manager gets its subscribe call injected; it never talks to WhatsApp itself."""
    for path in sorted((PACKAGE / "manager").glob("*.py")):
        for module, _level in imported(path):
            assert "bridge" not in module.split("."), (path, module)


def test_home_assistant_reaches_the_bridge_through_its_client_only() -> None:
    """The glue speaks the protocol through the client; a backend only runs in the bridge process."""
    for path in sorted(PACKAGE.glob("*.py")):
        for module, level in imported(path):
            if level == 1 and module.split(".")[0] == "bridge":
                assert module in ("bridge", "bridge.client", "bridge.protocol"), (path, module)


FLOW_MODULES = ("config_flow", "subentry_flow", "options_flow", "pairing")
"""What runs before an entry exists (or beside it): the flows and the flow's own bridge."""


def run_time_imports(path: Path) -> set[str]:
    """The package's modules a file imports when it runs (not those under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update(alias.name for alias in node.names)
    return found


def test_flows_do_not_import_the_runtime() -> None:
    """The flows, and what they import, never reach the coordinator (a type is imported only
    for type checking): link and pairing code stays apart from the running entry's."""
    for start in FLOW_MODULES:
        seen: set[str] = set()
        todo = [start]
        while todo:
            name = todo.pop()
            path = PACKAGE / f"{name}.py"
            if name in seen or not path.is_file():
                continue  # a package (bridge, manager) or already followed
            seen.add(name)
            todo.extend(run_time_imports(path))
        assert "coordinator" not in seen, (start, sorted(seen))
        if start == "config_flow":  # the walk follows imports (else it would prove nothing)
            assert {"subentry_flow", "options_flow", "pairing", "launcher"} <= seen
