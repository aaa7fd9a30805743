"""The package's modules import one way: no import circles, counting every import statement
(module level, inside functions and under ``TYPE_CHECKING``)."""

import ast
from pathlib import Path

import jaxvision

PACKAGE = Path(jaxvision.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, modules: set[str], *, is_package: bool = False) -> set[str]:
    """The ``modules`` that module ``name`` (code ``source``) imports. ``from a.b import c``
    counts ``a.b.c`` when it is a module, else ``a.b``. The parent packages that Python runs
    first are not edges: ``a.b.c`` does not depend on ``a.b`` by being inside it."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path.read_text(), name, set(paths), is_package=path.name == "__init__.py")
            for name, path in paths.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_circle_finder_finds_circles():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_graph_sees_lazy_relative_and_type_checking_imports():
    modules = {"p", "p.a", "p.b", "p.c", "p.d", "p.sub", "p.sub.e"}
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.a import Thing\n"
              "def f():\n    from p import b, helper\n    import p.c.missing\n"
              "from . import d\nfrom ..d import y\nimport numpy\n")
    assert imported_modules(source, "p.sub.e", modules) == {"p.a", "p.b", "p", "p.c", "p.sub", "p.d"}
    assert imported_modules("from . import a\nfrom .sub import e", "p", modules, is_package=True) == {"p.a", "p.sub.e"}


def test_the_package_has_no_import_circles():
    graph = import_graph()
    assert len(graph) > 40
    assert circles(graph) == []
    # Model modules register into the registry, so it imports nothing of jaxvision but the
    # leaf that derives a class's rngs from its seed.
    assert set(graph["jaxvision.models.registry"]) <= {"jaxvision.models.rngs"}
    assert not graph["jaxvision.models.rngs"]
    assert "jaxvision.models.convnets" in graph["jaxvision.models"]  # importing the package registers them
