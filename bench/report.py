"""Writes one benchmark's results into BENCHMARKS.md.

Each benchmark owns one section of BENCHMARKS.md, between the markers
`<!-- bench:<name> -->` and `<!-- /bench:<name> -->`; rerunning a benchmark
replaces its section and leaves the others alone. Every section starts with
the command that produced it, the machine and the date, so each figure can be
rerun by anyone.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys

import torch

BENCHMARKS_MD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "BENCHMARKS.md")

_HEADER = """# Benchmarks

Every section below is written by the script under `bench/` that its command
names; rerun the command, from the project's root, to refresh it (the scripts
run as modules of the `bench` package: `python -m bench.<script>`). Figures
are medians of repeated runs on the machine named in the section; ratios
compare runs made in the same process on the same machine, which is what to
trust on shared, noisy machines.
"""


def machine() -> str:
    """A one-line description of where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    # machines here differ most in these: bf16 native (AVX-512 BF16, AMX) or emulated
                    found = [w for w in line.split(":", 1)[1].split()
                             if w in ("avx2", "avx512f", "avx512_bf16") or w.startswith("amx")]
                    flags = " (" + " ".join(found or ["no avx2"]) + ")"
                    break
    except OSError:
        pass
    threads = torch.get_num_threads()
    # how idle OpenMP threads wait changes CPU step times by up to 2.3x (BENCHMARKS.md, thread-wait)
    waiting = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
                        if k in os.environ) or "OpenMP wait policy unset"
    text = (f"{cpu}{flags}, {os.cpu_count()} CPUs visible, torch {torch.__version__} "
            f"with {threads} threads, {waiting}")
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


def command() -> str:
    """The command line that is running, as typed: `python -m bench.NAME ...`."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = f"-m {spec.name}" if spec is not None and spec.name else shlex.quote(sys.argv[0])
    return " ".join(["python", program, *(shlex.quote(a) for a in sys.argv[1:])])


def write_section(name: str, body: str, cmd: str | None = None) -> str:
    """Replace (or append) the section `name` of BENCHMARKS.md; returns its text."""
    today = datetime.date.today().isoformat()
    section = (f"<!-- bench:{name} -->\n"
               f"Command: `{cmd or command()}`  \n"
               f"Machine: {machine()}  \n"
               f"Date: {today}\n\n"
               f"{body.strip()}\n"
               f"<!-- /bench:{name} -->")
    text = _HEADER
    if os.path.exists(BENCHMARKS_MD):
        with open(BENCHMARKS_MD, encoding="utf-8") as f:
            text = f.read()
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    if start in text and end in text:
        before = text[:text.index(start)]
        after = text[text.index(end) + len(end):]
        text = before + section + after
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    tmp = BENCHMARKS_MD + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, BENCHMARKS_MD)
    return section


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)
