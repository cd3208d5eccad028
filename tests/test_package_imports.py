"""What ssl_geom's modules import, read from their source with ``ast`` (nothing is imported).

- No import cycle between the modules of ssl_geom: layers point one way (project rule), and
  a circle makes the import order decide which names exist.
- A plain install has everything ssl_geom imports: only the runtime dependencies (and what
  they require), never a package of the ``dev`` extra (test and notebook tools).

Every ``import`` statement counts: at module level, inside functions (imports deferred on
purpose) and under ``if TYPE_CHECKING:`` (a circle there still ties the two modules together).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import ssl_geom

PACKAGE_ROOT = Path(ssl_geom.__file__).resolve().parent


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package in ``package_dir``."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Absolute dotted names ``path`` imports: ``import a.b`` gives ``a.b``, ``from a import b``
    gives ``a.b`` (a submodule, or a name in ``a``: :func:`import_graph` tells them apart),
    relative imports resolved against ``module``."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                if not is_package:
                    anchor.pop()
                anchor = anchor[: len(anchor) - (node.level - 1)]
                source = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            yield from (f"{source}.{alias.name}" for alias in node.names)


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports.

    An imported name resolves to the longest module it names (``from .base import X`` is an
    edge to ``base``; ``from . import builtin`` to ``builtin``). Not counted: the implicit
    import of a package's ``__init__`` that precedes importing any of its submodules. Every
    ``__init__`` that re-exports its submodules would otherwise form a circle with each of
    them, although Python runs it first and the submodules never read from it; an explicit
    ``from ssl_geom.backbones import X`` in a submodule of backbones *is* an edge.
    """
    modules = module_files(package_dir)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imported in imported_names(name, path):
            parts = imported.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            target = ".".join(parts)
            if target and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: each strongly connected set of two or more modules, sorted."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        order[node] = low[node] = len(order)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return sorted(found)


def test_ssl_geom_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE_ROOT)
    # The parser sees the edges it must: a relative import, a deferred one in a function.
    assert "ssl_geom.backbones.registry" in graph["ssl_geom.backbones.hssl"]
    assert "ssl_geom.backbones.builtin" in graph["ssl_geom.backbones.catalog"]
    assert cycles(graph) == [], "import circles; break them so layers point one way"


def test_the_math_layer_imports_nothing_above_it() -> None:
    # Project rule: pure tensor code in losses/ and metrics/ (H-SSL's fiber sampling
    # included), Lightning code on top; layers point downward only.
    math_layer = ("ssl_geom.losses", "ssl_geom.metrics")
    graph = import_graph(PACKAGE_ROOT)
    modules = module_files(PACKAGE_ROOT)
    assert "ssl_geom.losses.fibers" in modules
    upward = {
        name: sorted(t for t in targets if not t.startswith(math_layer))
        for name, targets in graph.items()
        if name.startswith(math_layer)
    }
    assert {name: up for name, up in upward.items() if up} == {}
    frameworks = {
        name: sorted(i for i in imported_names(name, path) if i.split(".")[0] == "lightning")
        for name, path in modules.items()
        if name.startswith(math_layer)
    }
    assert {name: found for name, found in frameworks.items() if found} == {}


def test_the_cycle_check_sees_relative_and_type_checking_imports(tmp_path: Path) -> None:
    # A circle closed only under TYPE_CHECKING (the one backbones/readout.py had), and a
    # package __init__ re-exporting a submodule (not a circle, see import_graph).
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from .sub.a import A\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("from .b import B\nA = 1\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..sub import a\nB = 2\n"
    )
    (package / "c.py").write_text("import pkg.sub.b\nfrom . import sub\n")
    graph = import_graph(package)
    assert graph == {
        "pkg": {"pkg.sub.a"},
        "pkg.sub": set(),
        "pkg.sub.a": {"pkg.sub.b"},
        "pkg.sub.b": {"pkg.sub.a"},
        "pkg.c": {"pkg.sub.b", "pkg.sub"},
    }
    assert cycles(graph) == [["pkg.sub.a", "pkg.sub.b"]]


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level name of each non-stdlib module ssl_geom imports -> the files importing it."""
    found: dict[str, set[str]] = {}
    for name, path in module_files(PACKAGE_ROOT).items():
        for imported in imported_names(name, path):
            top = imported.split(".")[0]
            if top != "ssl_geom" and top not in sys.stdlib_module_names:
                found.setdefault(top, set()).add(str(path.relative_to(PACKAGE_ROOT.parent)))
    return found


def _requirements(extra: str | None) -> list[Requirement]:
    """ssl_geom's requirements from its installed metadata (pyproject): runtime or one extra."""
    listed = [Requirement(text) for text in requires("ssl_geom") or []]
    if extra is None:
        return [r for r in listed if r.marker is None]
    return [r for r in listed if r.marker is not None and r.marker.evaluate({"extra": extra})]


def _runtime_closure() -> set[str]:
    """Distributions a plain ``pip install ssl_geom`` brings: the runtime requirements, the
    extras they ask for (``lightning[pytorch-extra]``) and what those require in turn."""
    extras: dict[str, set[str]] = {}
    todo = _requirements(None)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        wanted = {"", *requirement.extras}
        if name in extras and wanted <= extras[name]:
            continue
        extras[name] = extras.get(name, set()) | wanted
        try:
            listed = distribution(requirement.name).requires or []
        except PackageNotFoundError:  # a platform-specific requirement not installed here
            continue
        for text in listed:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras[name]):
                todo.append(sub)
    return set(extras)


def _providers(top: str) -> set[str]:
    return {canonicalize_name(d) for d in packages_distributions().get(top, [])}


def test_ssl_geom_imports_only_what_a_plain_install_brings() -> None:
    runtime = _runtime_closure()
    assert {"torch", "lightning", "jsonargparse"} <= runtime  # the closure follows extras
    missing = {
        top: sorted(files)
        for top, files in _third_party_imports().items()
        if not _providers(top) & runtime
    }
    assert missing == {}, "imported by ssl_geom but not a runtime dependency (pyproject)"


def test_no_module_of_ssl_geom_imports_a_dev_only_package() -> None:
    # What a plain install happens to bring does not make a dev tool a runtime dependency: the
    # dev extra, not availability, decides (scipy, which e2cnn requires, is now a runtime
    # dependency of its own: the claims' t quantiles).
    dev = {canonicalize_name(r.name) for r in _requirements("dev")}
    for top in ("pytest", "hypothesis", "nbclient", "nbformat", "ipykernel"):
        assert _providers(top) & dev, f"import name {top!r} is not traced to the dev extra"
    dev_imports = {
        top: sorted(files) for top, files in _third_party_imports().items() if _providers(top) & dev
    }
    assert dev_imports == {}, "move the module out of the package or drop the import"
