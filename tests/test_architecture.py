"""The direction of dependence: core and adapters never load the UI or the CLI."""

import subprocess
import sys

import pytest

UI_MODULES = ("nicegui", "fastapi", "starlette", "uvicorn", "loralens.app", "loralens.cli")


@pytest.mark.parametrize("package,walk", [("loralens", False), ("loralens.core", True), ("loralens.adapters", True)])
def test_library_import_loads_no_ui_module(package: str, walk: bool) -> None:
    """Importing the package (and, for core and adapters, every module below it) loads no UI module."""
    code = (
        f"import sys, importlib, pkgutil, {package} as p\n"
        f"for m in pkgutil.walk_packages(p.__path__ if {walk} else [], p.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {{'nicegui','fastapi','starlette','uvicorn'}} "
        f"or m.startswith(('loralens.app', 'loralens.cli'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{package} loaded UI modules: {out}"


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f'{name} is blocked in this test')
        return None
sys.meta_path.insert(0, Block())
"""

#: modules that must import without NiceGUI (and the web stack): all of core, every page's view, the shared pure ones
PURE_APP_MODULES = ("loralens.app.url_state", "loralens.app.site", "loralens.app.palette", "loralens.app.labs.charts",
                    "loralens.app.explorer.view", "loralens.app.explorer.diagram", "loralens.app.models.view",
                    "loralens.app.inspector.view", "loralens.app.inspector.resize_view", "loralens.app.labs.view",
                    "loralens.app.lessons.view")


def _run_blocked(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", f"BLOCKED = {set(blocked)!r}\n" + BLOCKER + code],
                          capture_output=True, text=True)


def test_pure_modules_import_with_nicegui_absent() -> None:
    """Every view module and all of core import when NiceGUI, FastAPI and Starlette cannot be imported."""
    code = ("import importlib, pkgutil, loralens.core as core\n"
            "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'loralens.core.')]\n"
            f"names += {list(PURE_APP_MODULES)!r}\n"
            "for name in names:\n    importlib.import_module(name)\n")
    result = _run_blocked(("nicegui", "fastapi", "starlette", "uvicorn"), code)
    assert result.returncode == 0, result.stderr[-2000:]


def test_core_never_imports_adapters_cli_or_app() -> None:
    code = ("import importlib, pkgutil, sys, loralens.core as core\n"
            "for m in pkgutil.walk_packages(core.__path__, 'loralens.core.'):\n    importlib.import_module(m.name)\n"
            "print(sorted(m for m in sys.modules if m.startswith(('loralens.adapters', 'loralens.cli', "
            "'loralens.commands', 'loralens.app'))))")
    result = _run_blocked((), code)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr[-2000:]


def test_explorer_view_and_counting_import_with_numpy_blocked() -> None:
    """The Explorer's Python view model (the oracle of the browser module) and the package's counting API need no
    numpy: the package __init__ imports lazily."""
    code = ("import loralens\nfrom loralens.app.explorer.view import ExplorerState, build_view\n"
            "assert loralens.count_layer(4096, 4096, 8).lora == 65536\n"
            "assert build_view(ExplorerState()).lora_text == '65,536'\n")
    result = _run_blocked(("numpy",), code)
    assert result.returncode == 0, result.stderr[-2000:]


PUBLIC_API = """
LABS PRESETS Adapter AdapterError AdapterReport Architecture ConfigError InvalidParameterError LayerCount
LinearModule LoraConfigSpec LoraCount LoraLensError LoraSpec MemoryBreakdown MemoryEstimate MethodCount ModuleCount
OutputError __version__ architecture_from_config break_even_rank compare_methods count_layer count_lora delta_weight
estimate_memory forward full_params get_architecture init_lora inspect_adapter load_adapter lora_params
max_rank_for_savings merge merge_adapter resize_adapter run_fit run_init run_merge run_subspace scaling unmerge
write_adapter
""".split()


def test_public_api_is_pinned() -> None:
    """A change to the public names is deliberate: it changes this list too."""
    import loralens

    assert sorted(loralens.__all__) == sorted(PUBLIC_API)
    for name in loralens.__all__:
        assert hasattr(loralens, name), name


def test_code_passes_ruff() -> None:
    """No unused or undefined names, syntax errors or mutable defaults anywhere (rules in pyproject.toml)."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is a test dependency: pip install -e '.[test]'"
    result = subprocess.run([ruff, "check", "--output-format", "concise", "src", "tests", "benchmarks", "scripts"],
                            cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


ORACLES = {"torch", "transformers", "peft"}
#: files still to be split (their oracle tests move to tests/oracle/ with the work in flight on them)
def test_only_tests_oracle_imports_the_oracles() -> None:
    """torch, transformers and peft are imported only under tests/oracle/ (anywhere in a file, at any depth), so the
    unit tests collect without them; the oracle files import them plainly, so a missing oracle fails, never skips."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        if rel.startswith("tests/oracle/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip":
                names = [getattr(node.args[0], "value", "")] if node.args else []
            found += [f"{rel}:{node.lineno} {name}" for name in names if name.split(".")[0] in ORACLES]
    assert found == []
