"""The translation keys the integration's code can produce, read from its source.

Shared by test_translations.py and test_validation.py (test modules never import each other).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
import json
from typing import Any

import yaml

from .code_strings import (
    HA_FLOW_BASES,
    PACKAGE,
    Module,
    Resolver,
    Unresolved,
    integration_modules,
    keyword,
)

STRINGS: dict[str, Any] = json.loads((PACKAGE / "translations" / "en.json").read_text("utf-8"))
SERVICES: dict[str, Any] = yaml.safe_load((PACKAGE / "services.yaml").read_text("utf-8"))
MODULES = integration_modules()

# What Home Assistant's flow helpers abort with by themselves.
IMPLIED_ABORTS = {
    "_abort_if_unique_id_configured": "already_configured",
    "_async_abort_entries_match": "already_configured",
    "async_update_and_abort": "reconfigure_successful",
}
PLATFORMS = {"sensor", "binary_sensor", "switch", "button", "select", "number", "event", "text"}


def _class_section(
    resolver: Resolver, cls: ast.ClassDef, classes: dict[str, ast.ClassDef], flow: str = ""
) -> list[str]:
    """Where a flow class's strings live: config, options or config_subentries.<type>."""
    for base in cls.bases:
        name = base.id if isinstance(base, ast.Name) else None
        if name in HA_FLOW_BASES:
            section = HA_FLOW_BASES[name]
            if section != "config_subentries":
                return [section]
            types = _subentry_types(resolver, flow or cls.name, classes)
            return [f"config_subentries.{t}" for t in types]
        if name in classes:
            return _class_section(resolver, classes[name], classes, flow or cls.name)
    return []


def _subentry_types(resolver: Resolver, flow: str, classes: dict[str, ast.ClassDef]) -> list[str]:
    """The subentry types served by flow class ``flow`` or a subclass of it."""
    found = []
    for module, function in resolver.functions["async_get_supported_subentry_types"]:
        for node in ast.walk(function):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(value, ast.Name) and _is_subclass(value.id, flow, classes):
                        assert key is not None
                        found += sorted(resolver.values(module, key))
    return found


def _is_subclass(name: str, ancestor: str, classes: dict[str, ast.ClassDef]) -> bool:
    if name == ancestor:
        return True
    cls = classes.get(name)
    return cls is not None and any(
        isinstance(b, ast.Name) and _is_subclass(b.id, ancestor, classes) for b in cls.bases
    )


def _flow_keys(
    resolver: Resolver, module: Module, section: str, cls: ast.ClassDef
) -> Iterator[str]:
    """The flow strings a class can show, as dotted en.json paths."""
    for node in ast.walk(cls):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None)
            reason = keyword(node, "reason")
            if name in ("async_abort", "_abort_if_unique_id_mismatch") and reason is not None:
                yield from (f"{section}.abort.{r}" for r in resolver.values(module, reason))
            if name in IMPLIED_ABORTS:
                yield f"{section}.abort.{IMPLIED_ABORTS[name]}"
            if name == "async_set_unique_id":
                progress = keyword(node, "raise_on_progress")
                if not (isinstance(progress, ast.Constant) and progress.value is False):
                    yield f"{section}.abort.already_in_progress"
            if (action := keyword(node, "progress_action")) is not None:
                yield from (f"{section}.progress.{a}" for a in resolver.values(module, action))
            step = keyword(node, "step_id")
            options = keyword(node, "menu_options")
            if step is not None and options is not None:
                for step_id in resolver.values(module, step):
                    for option in resolver.values(module, options):
                        yield f"{section}.step.{step_id}.menu_options.{option}"
            if step is not None:
                yield from (f"{section}.step.{s}" for s in resolver.values(module, step))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "errors"
                ):
                    yield from (f"{section}.error.{e}" for e in resolver.values(module, node.value))
                elif isinstance(target, ast.Name) and target.id == "errors":
                    errors = resolver.dict_values(module, node.value)
                    yield from (f"{section}.error.{e}" for e in errors)
                elif isinstance(target, ast.Tuple):
                    for position, element in enumerate(target.elts):
                        if isinstance(element, ast.Name) and element.id == "errors":
                            errors = resolver.dict_values(module, node.value, position)
                            yield from (f"{section}.error.{e}" for e in errors)


def produced_keys() -> tuple[set[str], list[str]]:
    """Every en.json path the code can produce; and what could not be followed."""
    resolver = Resolver(MODULES)
    keys: set[str] = set()
    classes = {
        node.name: node
        for module in MODULES
        for node in ast.walk(module.tree)
        if isinstance(node, ast.ClassDef)
    }
    for module in MODULES:
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                for section in _class_section(resolver, node, classes):
                    keys |= set(_flow_keys(resolver, module, section, node))
            if not isinstance(node, ast.Call) or (key := keyword(node, "translation_key")) is None:
                continue
            func = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else getattr(node.func, "id", "")
            )
            if func in resolver.functions:
                continue  # a helper of this integration: the call inside it is checked
            values = resolver.values(module, key)
            if func.endswith(("Error", "Exception", "Failed", "NotReady", "Invalid")):
                keys |= {f"exceptions.{v}.message" for v in values}
            elif func.endswith("Description"):
                platform = module.name if module.name in PLATFORMS else "?"
                keys |= {f"entity.{platform}.{v}" for v in values}
            elif func == "async_create_issue":
                keys |= {f"issues.{v}" for v in values}
            elif func.endswith("SelectorConfig"):
                options = keyword(node, "options")
                assert options is not None, module.where(node)
                for v in values:
                    keys |= {f"selector.{v}.options.{o}" for o in resolver.values(module, options)}
            else:
                resolver.unresolved.append(
                    Unresolved(
                        module.where(node), f"translation_key in {func}() of an unknown kind"
                    )
                )
        for node in ast.walk(module.tree):
            # A translation fetched by its full key, e.g. the pair-retry step's reason words.
            if isinstance(node, ast.JoinedStr):
                text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
                if text.startswith("component.") and ".selector." in text:
                    selector = text.split(".selector.", 1)[1].split(".", 1)[0]
                    for option in _selector_options_read(resolver, module, node):
                        keys.add(f"selector.{selector}.options.{option}")
    for service, spec in SERVICES.items():
        keys.add(f"services.{service}")
        for name in (spec or {}).get("fields", {}):
            keys.add(f"services.{service}.fields.{name}")
    return keys, [str(u) for u in resolver.unresolved]


def _selector_options_read(resolver: Resolver, module: Module, node: ast.JoinedStr) -> set[str]:
    """The values of the f-string's last placeholder (the option looked up)."""
    placeholders = [v for v in node.values if isinstance(v, ast.FormattedValue)]
    return resolver.values(module, placeholders[-1].value) if placeholders else set()


def leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            yield from leaves(value, path)
        else:
            yield path


def covered(key: str) -> bool:
    """``key`` (a produced path) has words in en.json (a step needs none of its own: a
    progress step shows its action's words, a menu its options')."""
    parts = key.split(".")
    if "step" in parts and parts.index("step") == len(parts) - 2:
        return True
    node: Any = STRINGS
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return bool(node)


PRODUCED, UNRESOLVED = produced_keys()
