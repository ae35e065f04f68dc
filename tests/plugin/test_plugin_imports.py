"""``import pipestate`` and ``import pipestate.plugin`` must not import any framework."""

from __future__ import annotations

import subprocess
import sys


def test_core_and_plugin_package_do_not_import_tensorflow():
    code = (
        "import sys, pipestate, pipestate.plugin\n"
        "bad = [m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules]\n"
        "sys.exit(1 if bad else 0)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=".", check=False).returncode == 0
