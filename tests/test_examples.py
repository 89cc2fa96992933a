"""The examples run and pass their own checks: examples/mlp_digits.py trains an MLP with fastgd
and exits with an error if it does not learn or, with torch installed, if it strays from the
same training in torch (test accuracies, final weights)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastgd

# beside tests/ in a checkout, the sdist and the folder .ci/run tests the wheel from
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args):
    script = EXAMPLES / name
    if not script.exists():
        pytest.skip(f"{script} is absent: the tests run without the examples beside them")
    # the fastgd this test imported, whether installed or on PYTHONPATH
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(fastgd.__file__).parent.parent),
                                                      env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_mlp_digits():
    # 5 epochs (110 steps) keep it short; the README's command runs 30
    output = run_example("mlp_digits.py", "--epochs", "5")
    rows = [line.split()[0] for line in output.splitlines()
            if line.startswith(("fastgd ", "torch ")) and "not installed" not in line]  # the table's rows
    if importlib.util.find_spec("torch") is None:
        assert rows == ["fastgd"], output
        assert "torch is not installed" in output
    else:
        assert rows == ["fastgd", "torch"], output
        assert "final weights" in output and "EMA weights" in output


def test_out_of_core_text():
    # 10,000 documents (the README's command streams 100,000)
    output = run_example("out_of_core_text.py", "--documents", "10000", "--batch", "2000")
    accuracy = {line.split()[0]: float(line.split()[1]) for line in output.splitlines()
                if line.startswith(("fastgd ", "scikit-learn "))}
    assert set(accuracy) == {"fastgd", "scikit-learn"}, output
    assert accuracy["fastgd"] > 0.6, output  # three topics: chance is a third
