"""What the integration's code can show a user, read from its source (AST), not from a list.

A translation key is rarely a plain literal at its use: ``errors["base"] = error`` where
``error`` came from a helper's ``return None, "invalid_auth"``, ``translation_key=key`` in a
helper called with each key, a module constant. ``Resolver`` follows those the way a reader
does: constants of every module, a function's return values (the right element of a returned
tuple), a parameter's arguments at every call site, local assignments, ``a if c else b``,
``a or b``, and a name narrowed by an enclosing ``if name in ("x", "y")``. What it cannot follow
is reported as unresolved, so new code that hides a key fails the translation test until it is
written in a way a reader (and this resolver) can follow.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "custom_components" / "whatsapp_presence"
HA_FLOW_BASES = {
    "ConfigFlow": "config",
    "OptionsFlow": "options",
    "OptionsFlowWithReload": "options",
    "ConfigSubentryFlow": "config_subentries",
}


@dataclass
class Unresolved:
    """A place whose value the resolver could not follow."""

    where: str
    code: str

    def __str__(self) -> str:
        return f"{self.where}: {self.code}"


@dataclass
class Module:
    """One parsed module of the integration."""

    path: Path
    tree: ast.Module
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node

    @property
    def name(self) -> str:
        return self.path.stem

    def where(self, node: ast.AST) -> str:
        return f"{self.path.name}:{getattr(node, 'lineno', 0)}"

    def enclosing(
        self, node: ast.AST, kind: type[ast.AST] | tuple[type[ast.AST], ...]
    ) -> ast.AST | None:
        current = self.parents.get(node)
        while current is not None and not isinstance(current, kind):
            current = self.parents.get(current)
        return current


def integration_modules() -> list[Module]:
    """The Home Assistant side of the integration, and the manager (presets, priorities).

    The bridge only talks to the integration; what it says reaches users through these modules.
    """
    return [
        Module(path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for path in sorted([*PACKAGE.glob("*.py"), *PACKAGE.glob("manager/*.py")])
    ]


FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)


class Resolver:
    """Follows an expression to the string values it can have."""

    def __init__(self, modules: list[Module]) -> None:
        self.modules = modules
        self.constants: dict[str, tuple[Module, ast.expr]] = {}
        self.functions: dict[str, list[tuple[Module, FunctionNode]]] = defaultdict(list)
        self.calls: dict[str, list[tuple[Module, ast.Call]]] = defaultdict(list)
        self.unresolved: list[Unresolved] = []
        self._dict_values = False
        for module in modules:
            for node in module.tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target = node.targets[0]
                    if isinstance(target, ast.Name):
                        self.constants[target.id] = (module, node.value)
                elif (
                    isinstance(node, ast.AnnAssign)
                    and isinstance(node.target, ast.Name)
                    and node.value is not None
                ):
                    self.constants[node.target.id] = (module, node.value)
            for each in ast.walk(module.tree):
                if isinstance(each, FunctionNode):
                    self.functions[each.name].append((module, each))
                elif isinstance(each, ast.Call):
                    name = _call_name(each)
                    if name is not None:
                        self.calls[name].append((module, each))

    def values(self, module: Module, node: ast.expr, index: int | None = None) -> set[str]:
        """The strings ``node`` can be (``index``: that element of a tuple it evaluates to)."""
        return self._values(module, node, index, frozenset())

    def dict_values(self, module: Module, node: ast.expr, index: int | None = None) -> set[str]:
        """The strings among the values of the dicts ``node`` can be (e.g. a flow's errors)."""
        self._dict_values = True
        try:
            return self._values(module, node, index, frozenset())
        finally:
            self._dict_values = False

    def _fail(self, module: Module, node: ast.AST) -> set[str]:
        self.unresolved.append(Unresolved(module.where(node), ast.unparse(node)))
        return set()

    def _values(
        self, module: Module, node: ast.expr, index: int | None, seen: frozenset[object]
    ) -> set[str]:
        key = (id(node), index)
        if key in seen:
            return set()
        seen = seen | {key}
        match node:
            case ast.Constant(value=str() as value) if index is None:
                return {value} if value else set()
            case ast.Constant(value=None):
                return set()
            case ast.Tuple(elts=elts) | ast.List(elts=elts) if index is not None:
                return self._values(module, elts[index], None, seen) if index < len(elts) else set()
            case ast.Tuple(elts=elts) | ast.List(elts=elts) | ast.Set(elts=elts):
                found: set[str] = set()
                for element in elts:
                    found |= self._values(module, element, None, seen)
                return found
            case ast.Starred(value=value):
                return self._values(module, value, index, seen)
            case ast.Dict(values=dict_values) if index is None and self._dict_values:
                found = set()
                for dict_value in dict_values:
                    found |= self._values(module, dict_value, None, seen)
                return found
            case ast.Dict() if index is None and self._dict_values is False and not node.keys:
                return set()
            case ast.Dict(keys=keys) if index is None:  # iterating a dict gives its keys
                found = set()
                for dict_key in keys:
                    if dict_key is not None:
                        found |= self._values(module, dict_key, None, seen)
                return found
            case ast.IfExp(
                test=ast.Compare(left=ast.Name(id=tested), ops=[ast.In()], comparators=[allowed]),
                body=ast.Name(id=chosen),
                orelse=orelse,
            ) if tested == chosen:  # `x if x in KNOWN else OTHER`
                return self._values(module, allowed, None, seen) | self._values(
                    module, orelse, index, seen
                )
            case ast.IfExp(body=body, orelse=orelse):
                return self._values(module, body, index, seen) | self._values(
                    module, orelse, index, seen
                )
            case ast.BoolOp(values=operands):
                found = set()
                for operand in operands:
                    found |= self._values(module, operand, index, seen)
                return found
            case ast.Await(value=value):
                return self._values(module, value, index, seen)
            case ast.Call(
                func=ast.Name(id="list" | "tuple" | "set" | "sorted" | "str"), args=[arg]
            ):
                return self._values(module, arg, index, seen)
            case ast.Subscript() | ast.Call(func=ast.Attribute(attr="get")) if (
                narrowed := self._narrowed(module, node, _spelling(node))
            ) is not None:  # e.g. payload["reason"] under `if payload.get("reason") in KNOWN:`
                return narrowed
            case ast.Call():
                return self._call_values(module, node, index, seen)
            case ast.Name(id=name):
                return self._name_values(module, node, name, index, seen)
            case ast.Attribute(attr=attr) if attr in self.constants:
                constant_module, value = self.constants[attr]
                return self._values(constant_module, value, index, seen)
        return self._fail(module, node)

    def _call_values(
        self, module: Module, node: ast.Call, index: int | None, seen: frozenset[object]
    ) -> set[str]:
        name = _call_name(node)
        definitions = self.functions.get(name or "", [])
        if not definitions:
            return self._fail(module, node)
        found: set[str] = set()
        for function_module, function in definitions:
            for returned in ast.walk(function):
                if (
                    isinstance(returned, ast.Return)
                    and returned.value is not None
                    and function_module.enclosing(returned, FUNCTION_NODES) is function
                ):
                    found |= self._values(function_module, returned.value, index, seen)
        return found

    def _name_values(
        self,
        module: Module,
        node: ast.Name,
        name: str,
        index: int | None,
        seen: frozenset[object],
    ) -> set[str]:
        if (narrowed := self._narrowed(module, node, name)) is not None:
            return narrowed
        function = module.enclosing(node, FUNCTION_NODES)
        if isinstance(function, FunctionNode):
            assigned = list(_assignments(function, name))
            if assigned:
                found: set[str] = set()
                for value, position in assigned:
                    found |= self._values(module, value, position, seen)
                return found
            parameters = [arg.arg for arg in (*function.args.posonlyargs, *function.args.args)]
            keyword_only = [arg.arg for arg in function.args.kwonlyargs]
            if name in parameters or name in keyword_only:
                return self._argument_values(module, function, name, parameters, index, seen)
        if name in self.constants:
            constant_module, value = self.constants[name]
            return self._values(constant_module, value, index, seen)
        return self._fail(module, node)

    def _argument_values(
        self,
        function_module: Module,
        function: FunctionNode,
        name: str,
        parameters: list[str],
        index: int | None,
        seen: frozenset[object],
    ) -> set[str]:
        position = parameters.index(name) if name in parameters else None
        if position is not None and parameters and parameters[0] in ("self", "cls"):
            position -= 1
        found: set[str] = set()
        for call_module, call in self.calls.get(function.name, []):
            if call_module is not function_module and function.name.startswith("_"):
                continue  # a private helper is only called in its own module
            passed = next((kw.value for kw in call.keywords if kw.arg == name), None)
            if passed is None and position is not None and position < len(call.args):
                passed = call.args[position]
            if passed is not None:
                found |= self._values(call_module, passed, index, seen)
        return found

    def _narrowed(self, module: Module, node: ast.expr, name: str) -> set[str] | None:
        """Values of ``name`` (an expression's spelling) fixed by an enclosing
        ``if name in (...)`` or ``if name == "x"``."""
        child: ast.AST = node
        parent = module.parents.get(node)
        while parent is not None and not isinstance(parent, FunctionNode):
            if isinstance(parent, ast.If) and child is not parent.test:
                test = parent.test
                if (
                    isinstance(test, ast.Compare)
                    and _spelling(test.left) == name
                    and len(test.ops) == 1
                    and child in parent.body
                ):
                    if isinstance(test.ops[0], ast.In):
                        return self.values(module, test.comparators[0])
                    if isinstance(test.ops[0], ast.Eq):
                        return self.values(module, test.comparators[0])
            child, parent = parent, module.parents.get(parent)
        return None


def _spelling(node: ast.expr) -> str:
    """An expression as source, ``d.get(k)`` spelled ``d[k]`` (both read the same value)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and len(node.args) == 1
    ):
        return f"{ast.unparse(node.func.value)}[{ast.unparse(node.args[0])}]"
    return ast.unparse(node)


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _assignments(function: FunctionNode, name: str) -> Iterator[tuple[ast.expr, int | None]]:
    """``name = value`` (no index) and ``a, name = value`` (its position) in ``function``."""
    for node in ast.walk(function):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.NamedExpr):  # `if error := check(x):`
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if value is None:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id == name:
                yield value, None
            elif isinstance(target, ast.Tuple):
                for position, element in enumerate(target.elts):
                    if isinstance(element, ast.Name) and element.id == name:
                        yield value, position


def keyword(node: ast.Call, name: str) -> ast.expr | None:
    """The value of keyword argument ``name`` of a call, if given."""
    return next((kw.value for kw in node.keywords if kw.arg == name), None)
