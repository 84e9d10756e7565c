"""scripts/setup.sh on a disk too small for PyTorch: it says how much room
there is and what to do before pip's bare "[Errno 28]", and keeps quiet where
there is room. The set-up runs for real in a copy of the script, with a
stand-in .venv/bin/python (so nothing is installed) and a stand-in `df`."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Answers every pip call but the PyTorch install, which fails as a full disk does;
# `-c "import torch, torchvision"` fails, so the script goes on to install it.
STAND_IN_PYTHON = """#!/bin/bash
if [ "$1" = "-c" ]; then exit 1; fi
case "$*" in *torch==*) echo "ERROR: [Errno 28] No space left on device" >&2; exit 1;; esac
exit 0
"""


def _executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run_setup(tmp_path, free_mb):
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", project / "scripts" / "setup.sh")
    (project / ".venv" / "bin").mkdir(parents=True)
    _executable(project / ".venv" / "bin" / "python", STAND_IN_PYTHON)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "df", "#!/bin/bash\n"
                "echo 'Filesystem 1048576-blocks Used Available Capacity Mounted on'\n"
                f"echo '/dev/vda 257000 200000 {free_mb} 99% /'\n")
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(["bash", "scripts/setup.sh"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_small_disk_is_named_before_pip_fails(tmp_path):
    run = _run_setup(tmp_path, free_mb=878)
    assert run.returncode != 0
    warning = run.stderr.index("has 878 MB free")
    assert warning < run.stderr.index("No space left on device")
    assert "about 6000 MB" in run.stderr and "TORCH_SPEC=" in run.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_no_warning_with_room(tmp_path):
    run = _run_setup(tmp_path, free_mb=70000)
    assert "MB free" not in run.stderr
    assert "No space left on device" in run.stderr  # the stand-in pip still ran
