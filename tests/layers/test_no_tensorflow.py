"""Architectural rules, enforced: functions serve with LiteRT only (importing the shared layer and every handler
never loads TensorFlow), and /fix, which serves no model, does not even load LiteRT."""
import subprocess
import sys

from tests.conftest import ROOT


def loaded_after(code: str, roots: tuple[str, ...]) -> subprocess.CompletedProcess:
    check = (code + "\nbad = sorted(n for n in sys.modules if n.split('.')[0] in " + repr(roots) + ")\n"
             "print(bad); sys.exit(1 if bad else 0)\n")
    return subprocess.run([sys.executable, "-c", "import importlib, pkgutil, sys\n" + check], cwd=ROOT,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_layers_and_handlers_do_not_import_tensorflow():
    result = loaded_after(
        "import layers, functions\n"
        "for m in pkgutil.walk_packages(layers.__path__, 'layers.'): importlib.import_module(m.name)\n"
        "for m in pkgutil.iter_modules(functions.__path__): importlib.import_module(f'functions.{m.name}.handler')",
        ("tensorflow", "keras"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_fix_does_not_load_litert():
    result = loaded_after("import functions.fix.handler", ("ai_edge_litert",))
    assert result.returncode == 0, result.stdout + result.stderr
