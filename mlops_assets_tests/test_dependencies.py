"""Every third-party package the code imports is declared in pyproject.toml: an import that works
only because some dependency happens to pull the package in breaks when that dependency drops
it. Imports are read with `ast` (also those inside functions); an optional extra's packages
may only be imported inside functions, so the package imports without the extra installed."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"mlops_assets"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(pyproject: Path) -> tuple[set[str], set[str]]:
    """(normalized names of [project.dependencies], those of the optional extras)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    required = {_norm(Requirement(r).name) for r in project.get("dependencies", [])}
    optional = {_norm(Requirement(r).name) for reqs in project.get("optional-dependencies", {}).values()
                for r in reqs}
    return required, optional


def imports(source: str) -> list[tuple[str, int, bool]]:
    """(top-level module, line, inside a function) of each absolute import."""
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name.split(".")[0], node.lineno, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno, in_function))
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(source), False)
    return found


def undeclared_imports(package_dir: Path, pyproject: Path) -> list[str]:
    """One line per import of a third-party package that pyproject.toml does not declare (or
    declares only in an extra while importing it at module level)."""
    required, optional = declared(pyproject)
    distributions = importlib.metadata.packages_distributions()
    problems = []
    for path in sorted(package_dir.rglob("*.py")):
        module = ".".join(path.relative_to(package_dir.parent).with_suffix("").parts).removesuffix(".__init__")
        for name, line, in_function in imports(path.read_text(encoding="utf-8")):
            if name in sys.stdlib_module_names or name in FIRST_PARTY:
                continue
            # An extra's package may not be installed: then its import name is its distribution's.
            dists = {_norm(d) for d in distributions.get(name, [])} or {_norm(name)}
            where = f"{module} (line {line}) imports {name}"
            if dists & required:
                continue
            if dists & optional:
                if not in_function:
                    problems.append(f"{where} at module level, but it is only in an optional extra "
                                    f"({', '.join(sorted(dists & optional))}): import it inside the function that needs it")
                continue
            problems.append(f"{where}, from {', '.join(sorted(dists))}, which pyproject.toml does not declare")
    return problems


def test_every_imported_package_is_declared():
    problems = undeclared_imports(ROOT / "mlops_assets", ROOT / "pyproject.toml")
    assert not problems, "\n".join(problems)


def test_a_planted_undeclared_import_is_caught(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "0"\ndependencies = ["PyYAML>=6", "dagster==1.13.27"]\n'
        '[project.optional-dependencies]\nk8s = ["dagster-k8s"]\n', encoding="utf-8")
    pkg = tmp_path / "mlops_assets"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import os\nimport yaml\nfrom . import sub\n", encoding="utf-8")
    (pkg / "sub" / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "sub" / "late.py").write_text(
        "import dagster as dg\nfrom mlops_assets import sub\n\n"
        "def run():\n    import httpx.client\n    from dagster_k8s import k8s_job_executor\n    return httpx\n",
        encoding="utf-8")
    (pkg / "early.py").write_text("import dagster_k8s\n", encoding="utf-8")

    problems = undeclared_imports(pkg, tmp_path / "pyproject.toml")
    assert len(problems) == 2, problems
    assert problems[0].startswith("mlops_assets.early (line 1) imports dagster_k8s at module level")
    # httpx is installed (a dev dependency) but not a declared dependency of the package
    assert problems[1].startswith("mlops_assets.sub.late (line 5) imports httpx, from httpx,")
