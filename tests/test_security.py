"""Security rules over the project's own code, checked on its syntax tree (so a new violation fails here).

- No shell: no `shell=True`, `os.system`, `os.popen` or `subprocess.getoutput`; inputs (paths with spaces,
  quotes, `$(...)`, leading dashes) never pass through a shell. Argument lists only.
- Checkpoints and weights never run pickled code: every `torch.load` passes `weights_only=True` (safetensors
  needs no such flag).
- Nothing `eval`s or `exec`s text.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("curation", "filters", "manifests", "jobs", "kernels", "isa_model", "benchmarks")


def _calls() -> list[tuple[str, ast.Call]]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            found += [(f"{path.relative_to(REPO)}:{node.lineno}", node) for node in ast.walk(tree)
                      if isinstance(node, ast.Call)]
    return found


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return f"{_name(func.value)}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_the_scan_sees_the_project():
    names = {_name(call.func) for _, call in _calls()}
    assert "subprocess.Popen" in names and len(names) > 100  # not vacuous: it parsed the real code


def test_no_shell_is_ever_used():
    bad = [where for where, call in _calls()
           if _name(call.func) in {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"}
           or (isinstance(_keyword(call, "shell"), ast.Constant) and _keyword(call, "shell").value is True)]
    assert bad == []


def test_every_torch_load_refuses_pickled_code():
    bad = [where for where, call in _calls() if _name(call.func).endswith("torch.load")
           and not (isinstance(_keyword(call, "weights_only"), ast.Constant) and _keyword(call, "weights_only").value is True)]
    assert bad == []


def test_nothing_evals_text():
    assert [where for where, call in _calls() if _name(call.func) in {"eval", "exec"}] == []
