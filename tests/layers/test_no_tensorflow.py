"""Functions serve with LiteRT only: importing the shared layer and every handler never loads TensorFlow."""
import subprocess
import sys

from tests.conftest import ROOT


def test_layers_and_handlers_do_not_import_tensorflow():
    code = (
        "import importlib, pkgutil, sys, layers, functions\n"
        "for m in pkgutil.iter_modules(layers.__path__): importlib.import_module('layers.' + m.name)\n"
        "for m in pkgutil.iter_modules(functions.__path__): importlib.import_module(f'functions.{m.name}.handler')\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
