"""The layers of docs/architecture.md hold in the code: every module of mlops_assets sits in a
layer of the page's table, imports only its own layer or the ones below, forms no import
circle (imports inside functions count), and uses no private Dagster name (`dagster._...`)
outside the exceptions the page lists with their reason.

Read from the source with `ast`, nothing is imported, so the check is fast and a module that
fails to import is still checked. The last test plants each kind of violation in a small
package of its own, so that a checker that finds nothing cannot pass silently.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "mlops_assets"
PAGE = ROOT / "docs" / "architecture.md"


@dataclass(frozen=True)
class Contract:
    layers: list[tuple[str, list[str]]]  # (layer, packages), top layer first
    private_allowed: dict[str, str]  # module -> why it may import dagster._


def _table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table under `heading` (without header and rule rows)."""
    match = re.search(rf"^#+ {re.escape(heading)}\s*$", text, flags=re.M)
    assert match, f"{PAGE}: no section '{heading}'"
    rows, started = [], False
    for line in text[match.end():].splitlines():
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                rows.append(cells)
        elif started:
            break
    return rows[1:]  # the header row


def read_contract(text: str) -> Contract:
    layers = [(row[0].strip("`* "), re.findall(r"`([\w.]+)`", row[1])) for row in _table_rows(text, "Layers")]
    allowed = {re.findall(r"`([\w.]+)`", row[0])[0]: row[-1] for row in _table_rows(text, "Private Dagster names")}
    return Contract(layers, allowed)


def module_files(root: Path, package: str) -> dict[str, Path]:
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


@dataclass(frozen=True)
class Import:
    target: str  # the module imported (a module of the package, or any other name)
    line: int


def imports_of(module: str, path: Path, modules: set[str]) -> list[Import]:
    """Every import of the file, also those inside functions; `from a import b` names the module
    a.b when it is one. Relative imports are resolved against `module`."""
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package_parts[:len(package_parts) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(sub if sub in modules else base, node.lineno))
    return found


def layer_of(module: str, layers: list[tuple[str, list[str]]], package: str) -> int | None:
    """Index of the layer whose package covers the module (the longest match); the root
    package's own entry covers only its __init__."""
    best, best_len = None, -1
    for index, (_, packages) in enumerate(layers):
        for pkg in packages:
            covers = module == pkg or (pkg != package and module.startswith(pkg + "."))
            if covers and len(pkg) > best_len:
                best, best_len = index, len(pkg)
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, components, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    circles = []
    for component in components:  # a shortest way back to the start, through the component
        start = min(component)
        paths, seen = {start: [start]}, {start}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(graph[v] & component):
                if w == start:
                    circles.append(paths[v] + [start])
                    queue = []
                    break
                if w not in seen:
                    seen.add(w)
                    paths[w] = paths[v] + [w]
                    queue.append(w)
    return circles


def violations(root: Path, package: str, contract: Contract) -> list[str]:
    files = module_files(root, package)
    modules = set(files)
    names = [name for name, _ in contract.layers]
    found: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    used_exceptions = set()
    for module, path in files.items():
        where = path.relative_to(root)
        layer = layer_of(module, contract.layers, package)
        if layer is None:
            found.append(f"{where}: module {module} is in no layer of the table in {PAGE.name}")
        for imp in imports_of(module, path, modules):
            if imp.target == "dagster._" or imp.target.startswith("dagster._"):
                if module in contract.private_allowed:
                    used_exceptions.add(module)
                else:
                    found.append(f"{where}:{imp.line}: imports the private Dagster name {imp.target} "
                                 "(use a public API, or list the module with its reason)")
            if imp.target not in modules or imp.target == module:
                continue
            graph[module].add(imp.target)
            target_layer = layer_of(imp.target, contract.layers, package)
            if layer is not None and target_layer is not None and target_layer < layer:
                found.append(f"{where}:{imp.line}: imports {imp.target} (layer {names[target_layer]}) "
                             f"up from layer {names[layer]}")
    for module in sorted(set(contract.private_allowed) - used_exceptions):
        found.append(f"{module} is listed as allowed to use a private Dagster name but uses none: "
                     "remove it from the list")
    for circle in _cycles(graph):
        found.append("import circle: " + " -> ".join(circle))
    return found


def test_every_package_of_the_table_exists_and_layers_are_named_once():
    contract = read_contract(PAGE.read_text())
    assert [name for name, _ in contract.layers] == ["app", "location", "components", "chain", "instance", "domain",
                                                     "use_cases", "storage", "base"]
    modules = set(module_files(ROOT, PACKAGE))
    listed = [pkg for _, packages in contract.layers for pkg in packages]
    assert len(listed) == len(set(listed)), f"a package is in two layers: {listed}"
    assert not [p for p in listed if p not in modules], "the table names packages that do not exist"


def test_the_package_keeps_its_layers():
    found = violations(ROOT, PACKAGE, read_contract(PAGE.read_text()))
    assert not found, f"{len(found)} violation(s) of docs/architecture.md:\n" + "\n".join(found)


PLANTED_PAGE = """
## Layers

| layer | packages |
|-------|----------|
| top | `fake.top` |
| low | `fake.low`, `fake` |

## Private Dagster names

| module | names | why |
|--------|-------|-----|
| `fake.top.allowed` | `dagster._x` | no public API |
"""


def test_the_checker_catches_planted_violations(tmp_path):
    def write(rel: str, text: str = "") -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    write("fake/__init__.py")
    write("fake/top/__init__.py")
    write("fake/top/allowed.py", "from dagster._x import y\n")
    write("fake/top/ok.py", "from fake.low import base\n")
    write("fake/low/__init__.py")
    write("fake/low/base.py", "def f():\n    from fake.top import ok  # up, and hidden in a function\n")
    write("fake/low/one.py", "from . import two\n")
    write("fake/low/two.py", "import fake.low.one\n")
    write("fake/low/private.py", "import dagster._core.events\n")
    write("fake/stray.py", "")
    found = violations(tmp_path, "fake", read_contract(PLANTED_PAGE))
    text = "\n".join(found)
    assert "fake/low/base.py:2: imports fake.top.ok (layer top) up from layer low" in text, text
    assert "import circle: fake.low.one -> fake.low.two -> fake.low.one" in text, text
    assert "import circle: fake.low.base -> fake.top.ok -> fake.low.base" in text, text
    assert "fake/low/private.py:1: imports the private Dagster name dagster._core.events" in text, text
    assert "fake/stray.py: module fake.stray is in no layer" in text, text
    assert "allowed.py" not in text, text
    assert len(found) == 5, text
