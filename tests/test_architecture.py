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
