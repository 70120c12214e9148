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


def module_imports(path) -> set[str]:
    """The modules a file imports at its top level (not inside a function, nor under TYPE_CHECKING): what
    importing it loads."""
    import ast
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ():
            if isinstance(sub, ast.Import):
                out |= {a.name for a in sub.names}
            elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
                out.add(sub.module)
                out |= {f"{sub.module}.{a.name}" for a in sub.names}
    return out


def every_import(path) -> set[str]:
    """Every module a file names in an import, anywhere in it (lazy imports included)."""
    import ast
    out: set[str] = set()
    for sub in ast.walk(ast.parse(path.read_text())):
        if isinstance(sub, ast.Import):
            out |= {a.name for a in sub.names}
        elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
            out.add(sub.module)
    return out


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def roots(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def test_the_nevers_hold_in_the_source():
    """No layer imports a function, the trainer, the generator, dev/, bench/, the tests or TensorFlow (not even
    lazily); no function imports the trainer or the generator."""
    for path in sorted((ROOT / "layers").rglob("*.py")):
        bad = roots(every_import(path)) & {"functions", "training_job", "portraits", "dev", "bench", "tests",
                                            "tensorflow", "keras"}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
    for path in sorted((ROOT / "functions").rglob("*.py")):
        bad = roots(every_import(path)) & {"training_job", "portraits", "dev", "bench", "tests", "tensorflow", "keras"}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_shared_layer_has_no_import_cycles():
    """Module-level imports between the layer's modules form no cycle (a lazy import inside a function is how a
    module that builds others, such as layers.wiring, stays out of one)."""
    files = {module_name(p): p for p in (ROOT / "layers").rglob("*.py")}
    graph = {m: {n for n in module_imports(p) if n in files and n != m} for m, p in files.items()}
    for m in files:      # `from layers.x.y import z` also loads the package layers.x (unless m is inside it)
        above = {".".join(n.split(".")[:i]) for n in set(graph[m]) for i in range(2, n.count(".") + 1)}
        graph[m] |= {a for a in above & set(files) if not m.startswith(a + ".")}
        graph[m].discard(m)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2
    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_flat_layer_holds_only_the_core_and_the_seams():
    """What stays flat in layers/ is what everything uses (issue 19): at most ten modules."""
    flat = sorted(p.stem for p in (ROOT / "layers").glob("*.py") if p.stem != "__init__")
    assert len(flat) <= 10, flat


# What each package may import of the layer's other packages (the flat core and seams are open to all).
ALLOWED = {
    "edge": set(),
    "serving": {"registry"},
    "ledger": {"edge", "registry"},
    "registry": {"edge", "ledger", "analysis", "serving"},
    "analysis": {"edge", "ledger", "registry", "serving"},
    "matching": {"edge", "ledger", "registry", "serving"},
    "slack": {"edge", "ledger", "registry", "serving", "matching", "analysis"},
}


def test_requests_flow_from_the_edge_to_the_services_and_slack_is_an_adapter():
    """The edge imports no service package; no service package imports the Slack adapter or the wiring."""
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / "layers" / package).rglob("*.py")):
            used = {n.split(".")[1] for n in every_import(path) if n.startswith("layers.") and n.count(".") >= 1}
            bad = used & (set(ALLOWED) | {"wiring"}) - allowed - {package}
            assert not bad, f"{path.relative_to(ROOT)} imports layers.{sorted(bad)}"


def test_only_config_reads_the_environment():
    """Settings are read once, at the edge, by layers.config; the functions and the template ask it."""
    files = [*(ROOT / "layers").rglob("*.py"), *(ROOT / "functions").rglob("*.py"), *(ROOT / "template").rglob("*.py")]
    readers = sorted(str(p.relative_to(ROOT)) for p in files
                     if p != ROOT / "layers" / "config.py" and ("os.environ" in p.read_text() or "getenv" in p.read_text()))
    assert readers == [], readers
