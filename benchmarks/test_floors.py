"""The bare C floors of the sparse epochs (benchmarks/floors.c) still build and run: compiled with
fastgd's flags and run on a small problem, the program checks its own results (its two lazy Adam
layouts give the same weights, every loop's result is finite) and prints its tables.  The figures
themselves come from running it by hand, as its header says."""
import platform
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

SOURCE = Path(__file__).with_name("floors.c")


def test_floors_build_and_check_themselves(tmp_path):
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler})")
    program = tmp_path / "floors"
    flags = ["-O2", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-Wall", "-Werror"]
    subprocess.run([compiler, *flags, "-o", str(program), str(SOURCE), "-lm"], check=True)
    done = subprocess.run([str(program), "3000", "4096", "20", "1", "1000"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "the two lazy Adam layouts gave the same weights" in done.stdout
    for loop in ("dot products", "per-sample SGD", "lazy Adam, batch 32, four arrays", "side by side", "the root"):
        assert loop in done.stdout
    if platform.machine() in ("x86_64", "AMD64"):  # every epoch asks for its rows ahead (GCC dropped
        assembly = tmp_path / "floors.s"       # the calls of a function of prefetches alone)
        subprocess.run([compiler, *flags, "-S", "-o", str(assembly), str(SOURCE)], check=True)
        text = assembly.read_text()
        for epoch in ("epoch_sum", "epoch_dot", "epoch_sgd", "epoch_lazy"):  # (each with its clones)
            bodies = re.findall(rf"^{epoch}[.\w]*:\n(.*?)^\s*\.size\s+{epoch}", text, re.S | re.M)
            assert bodies and all("prefetch" in body for body in bodies), epoch
    refused = subprocess.run([str(program), "10", "5", "20"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "usage" in refused.stderr
