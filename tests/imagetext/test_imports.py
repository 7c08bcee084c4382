"""No import cycle between components.pretrain (which will import ``unicl`` in its
``__init__``) and components.imagetext, whichever is imported first."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from components.common.env import PROJECT_ROOT

# Load components.pretrain from its __init__ with ``unicl`` added to the method imports (as
# the package will list it), then import the other package.
_PRELUDE = textwrap.dedent("""
    import importlib.util, pathlib, sys
    import components
    init = pathlib.Path("components/pretrain/__init__.py")
    lines = init.read_text().splitlines()
    if not any("unicl" in line for line in lines):
        first = next(i for i, l in enumerate(lines) if l.startswith("from components.pretrain import "))
        lines.insert(first + 1, "from components.pretrain import unicl  # noqa: F401")
    spec = importlib.util.spec_from_file_location(
        "components.pretrain", init, submodule_search_locations=[str(init.parent)])
    def load_pretrain():
        mod = importlib.util.module_from_spec(spec)
        sys.modules["components.pretrain"] = mod
        components.pretrain = mod
        exec(compile("\\n".join(lines), str(init), "exec"), mod.__dict__)
        return mod
""")

CASES = {
    "pretrain first": "pre = load_pretrain()\nimport components.imagetext.evaluate\n"
                      "assert 'unicl' in pre.METHODS",
    "imagetext first": "import components.imagetext.evaluate, components.imagetext.model\n"
                       "import components.imagetext.__main__\npre = load_pretrain()\n"
                       "import components.probe\nassert 'unicl' in pre.METHODS",
}


def test_import_order():
    """Both orders, each in a fresh interpreter (run side by side: imports dominate)."""
    procs = {case: subprocess.Popen([sys.executable, "-c", _PRELUDE + code], cwd=PROJECT_ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for case, code in CASES.items()}
    for case, proc in procs.items():
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"{case}: {err[-2000:]}"
