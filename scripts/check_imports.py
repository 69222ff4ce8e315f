"""Import rules of issue 20 that the import-linter layers contract cannot state.

    python scripts/check_imports.py                    # src/diffcap against pyproject.toml
    python scripts/check_imports.py --root PKG_DIR --pyproject FILE

Exit 1 with one line per finding (``file:line: rule: why``) when:

* ``cycle``: diffcap modules import each other in a circle (a strongly connected component of
  the module graph; function-local imports count, ``if TYPE_CHECKING:`` imports do not);
* ``private``: a module imports a private name (``_x``) of another diffcap module
  (``from diffcap.a import _x``, or ``a._x`` on an imported module);
* ``local``: a function imports a diffcap module that needs no optional extra. A function-local
  import is kept only when the imported module loads, at module level and transitively, a package
  of an extra of ``[project.optional-dependencies]`` (torch, ray, psycopg, ...), or when the line
  says why in a ``# lazy: <reason>`` comment (for example start-up time of ``diffcap --help``).

The checker reads the sources with ``ast``; it imports nothing of the package.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parent.parent

# Distribution names whose import name is not the distribution name with '-' -> '_'.
IMPORT_NAMES = {"scikit-video": "skvideo", "pyyaml": "yaml", "pillow": "PIL"}

# Modules, packages and circles exempt from the rules (none: keep it so).
ALLOWED_MODULES: frozenset[str] = frozenset()
ALLOWED_PACKAGES: tuple[str, ...] = ()
ALLOWED_CYCLES: tuple[frozenset[str], ...] = ()

LAZY = re.compile(r"#\s*lazy:\s*(\S.*)$")


@dataclass(frozen=True)
class Import:
    """One imported module as a statement names it (a ``from`` import may name several)."""

    line: int
    target: str  # the module loaded: a package module or an external top-level name
    names: tuple[str, ...]  # attribute names taken from target (``from target import ...``)
    scope: str  # "module", "local" (in a function) or "typing" (under TYPE_CHECKING)
    lazy: bool  # the statement carries a ``# lazy: <reason>`` comment
    internal: bool  # target is a module of the checked package


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: list[Import] = field(default_factory=list)
    private_uses: list[tuple[int, str, str]] = field(default_factory=list)  # line, module, name


LOCAL_HINT = ": import it at module level, or say why not in a '# lazy: <reason>' comment"
Finding = tuple[Module, int, str]  # module, line, "rule: why"


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def discover(root: Path) -> dict[str, Module]:
    """Every module of the package whose directory is ``root``, by dotted name."""
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, path, is_package)
    return modules


def extra_imports(pyproject: Path) -> frozenset[str]:
    """Top-level import names of the optional extras' packages (not of the core dependencies)."""
    project = tomllib.loads(pyproject.read_text())["project"]

    def import_name(requirement: str) -> str:
        dist = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower()
        return IMPORT_NAMES.get(dist, dist.replace("-", "_").replace(".", "_"))

    core = {import_name(r) for r in project.get("dependencies", [])}
    extras = project.get("optional-dependencies", {}).values()
    return frozenset(import_name(r) for reqs in extras for r in reqs) - core


class _Collector(ast.NodeVisitor):
    """Records the imports of one module with their scope, and ``mod._name`` attribute uses."""

    def __init__(self, module: Module, modules: dict[str, Module], lines: list[str]) -> None:
        self.module, self.modules, self.lines = module, modules, lines
        self.root = module.name.split(".")[0]
        self.functions = 0
        self.typing = 0
        self.bound: dict[str, str] = {}  # local name -> package module it is bound to

    def scope(self) -> str:
        return "typing" if self.typing else "local" if self.functions else "module"

    def lazy(self, node: ast.stmt) -> bool:
        span = self.lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
        return any(LAZY.search(text) for text in span)

    def add(self, node: ast.stmt, target: str, names: tuple[str, ...] = ()) -> None:
        internal = target == self.root or target.startswith(self.root + ".")
        top = target if internal else target.split(".")[0]
        item = Import(node.lineno, top, names, self.scope(), self.lazy(node), internal)
        self.module.imports.append(item)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name != "TYPE_CHECKING":
            self.generic_visit(node)
            return
        self.typing += 1
        for stmt in node.body:
            self.visit(stmt)
        self.typing -= 1
        for stmt in node.orelse:
            self.visit(stmt)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.add(node, alias.name)
            if alias.name in self.modules:
                bound = alias.name if alias.asname else alias.name.split(".")[0]
                self.bound[alias.asname or bound] = bound

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self.resolve(node)
        if base not in self.modules:
            self.add(node, base)
            return
        attributes = []
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            if submodule in self.modules:
                self.add(node, submodule)
                self.bound[alias.asname or alias.name] = submodule
            else:
                attributes.append(alias.name)
        if attributes or not node.names:
            self.add(node, base, tuple(attributes))

    def resolve(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.module.name.split(".")
        keep = len(parts) - node.level + (1 if self.module.is_package else 0)
        return ".".join(parts[:keep] + ([node.module] if node.module else []))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        owner = self.owner(node.value)
        if owner and is_private(node.attr) and f"{owner}.{node.attr}" not in self.modules:
            self.module.private_uses.append((node.lineno, owner, node.attr))
        self.generic_visit(node)

    def owner(self, node: ast.expr) -> str | None:
        """The package module an expression names (``mod`` or ``pkg.mod``), if any."""
        if isinstance(node, ast.Name):
            return self.bound.get(node.id)
        if isinstance(node, ast.Attribute):
            parent = self.owner(node.value)
            if parent and f"{parent}.{node.attr}" in self.modules:
                return f"{parent}.{node.attr}"
        return None


def collect(modules: dict[str, Module]) -> None:
    for module in modules.values():
        source = module.path.read_text()
        tree = ast.parse(source, str(module.path))
        collector = _Collector(module, modules, source.splitlines())
        # Bindings first (an import may follow the function that uses it), then the walk.
        collector.visit(tree)
        module.imports.clear()
        module.private_uses.clear()
        collector.visit(tree)


def parents(name: str) -> Iterator[str]:
    parts = name.split(".")
    for end in range(1, len(parts)):
        yield ".".join(parts[:end])


def needing_extras(modules: dict[str, Module], extras: frozenset[str]) -> set[str]:
    """Modules whose import loads an extra's package: directly, through module-level imports of
    other package modules, or through the ``__init__`` of a package above them."""
    needs = {
        m.name
        for m in modules.values()
        if any(i.scope == "module" and not i.internal and i.target in extras for i in m.imports)
    }
    changed = True
    while changed:
        changed = False
        for module in modules.values():
            if module.name in needs:
                continue
            loaded = [i.target for i in module.imports if i.scope == "module" and i.internal]
            loaded += [p for t in loaded for p in parents(t)]
            if any(t in needs for t in loaded):
                needs.add(module.name)
                changed = True
    return needs


def allowed(module: str) -> bool:
    return module in ALLOWED_MODULES or module.startswith(ALLOWED_PACKAGES)


def private_findings(modules: dict[str, Module]) -> Iterator[Finding]:
    for module in modules.values():
        if allowed(module.name):
            continue
        for item in module.imports:
            for name in item.names:
                if item.internal and is_private(name) and item.target != module.name:
                    yield module, item.line, f"private: imports {name} from {item.target}"
        for line, owner, name in module.private_uses:
            if owner != module.name:
                yield module, line, f"private: uses {owner}.{name}"
        for item in module.imports:
            private_module = item.internal and any(is_private(p) for p in item.target.split("."))
            if private_module and not module.name.startswith(package_of_private(item.target)):
                yield module, item.line, f"private: imports the private module {item.target}"


def package_of_private(target: str) -> str:
    """The package a private module belongs to: the one holding its first private part."""
    parts = target.split(".")
    first = next(i for i, part in enumerate(parts) if is_private(part))
    return ".".join(parts[:first])


def local_findings(modules: dict[str, Module], needs: set[str]) -> Iterator[Finding]:
    for module in modules.values():
        if allowed(module.name):
            continue
        for item in module.imports:
            if item.scope != "local" or not item.internal or item.lazy:
                continue
            if item.target in needs or any(p in needs for p in parents(item.target)):
                continue
            why = f"local: imports {item.target} inside a function, which needs no optional extra"
            yield module, item.line, why + LOCAL_HINT


def components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycle_findings(modules: dict[str, Module]) -> Iterator[Finding]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module in modules.values():
        for item in module.imports:
            if item.internal and item.scope != "typing" and item.target != module.name:
                graph[module.name].add(item.target)
    for members in components(graph):
        if frozenset(members) in ALLOWED_CYCLES:
            continue
        circle = " <-> ".join(members)
        for name in members:
            for item in modules[name].imports:
                if item.scope != "typing" and item.target in members and item.target != name:
                    yield (
                        modules[name],
                        item.line,
                        f"cycle: imports {item.target} ({item.scope} import); circle: {circle}",
                    )


def check(root: Path, pyproject: Path) -> list[str]:
    modules = discover(root)
    collect(modules)
    needs = needing_extras(modules, extra_imports(pyproject))
    findings: Iterable[Finding] = [
        *cycle_findings(modules),
        *private_findings(modules),
        *local_findings(modules, needs),
    ]
    lines = []
    for module, line, why in findings:
        path = module.path.relative_to(REPO) if module.path.is_relative_to(REPO) else module.path
        lines.append(f"{path}:{line}: {why}")
    return sorted(set(lines), key=lambda text: (text.split(":")[0], int(text.split(":")[1])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "src" / "diffcap")
    parser.add_argument("--pyproject", type=Path, default=REPO / "pyproject.toml")
    args = parser.parse_args(argv)
    findings = check(args.root.resolve(), args.pyproject)
    for line in findings:
        print(line)
    if findings:
        print(f"{len(findings)} import finding(s); see scripts/check_imports.py", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
