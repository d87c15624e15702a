"""`mlre sweep`'s executors agree: a process pool and a local Ray instance give the records the in-process run gives;
a sweep killed mid-way continues where it stopped; the command line runs end to end."""
import json
import signal
import subprocess
import sys
import time

import pytest

from mlre_lab.sweep import ablation_cells, load_records, run_sweep

from .conftest import BIN

TARGET = "mlre_lab.sweep:example_target"
CELLS = ablation_cells({"x": [2.0, 3.0]})
SEEDS = [0, 1]


def results(records):
    return [(r.cell, r.seed, r.result) for r in records]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return results(run_sweep(TARGET, CELLS, SEEDS, tmp_path_factory.mktemp("inline"), workers=0, log=lambda _: None))


def test_process_pool_equals_in_process(tmp_path, reference):
    assert results(run_sweep(TARGET, CELLS, SEEDS, tmp_path, workers=2, log=lambda _: None)) == reference


def test_ray_equals_local(tmp_path, reference):
    ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'mlre-lab[ray]'")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # Ray gives its local node a fixed 30 s to start, which a saturated machine can miss
        if "timed out during startup" not in str(e):
            raise
        ray.shutdown()
        pytest.skip(f"a local Ray instance did not start in Ray's 30 s limit on this machine: {e}")
    try:
        records = run_sweep(TARGET, CELLS, SEEDS, tmp_path, executor="ray", log=lambda _: None)
    finally:
        ray.shutdown()
    assert results(records) == reference


def test_ray_missing_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'mlre-lab\[ray\]'"):
        run_sweep(TARGET, CELLS, SEEDS, tmp_path, executor="ray", log=lambda _: None)


def test_killed_sweep_continues(tmp_path):
    # `mlre sweep` killed (SIGKILL, no chance to clean up) after its first finished run, then run again to the end.
    out = tmp_path / "sweep"
    args = [str(BIN / "mlre"), "sweep", TARGET, "--out", str(out), "--workers", "0", "--set", "delay_s=1.0",
            "--ablate", "x=2.0", "--seeds", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not list(out.glob("*/seed*/result.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {p.parent for p in out.glob("*/seed*/result.json")}
    assert 1 <= len(first) < 4, (first, proc.stderr.read())
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{len(first)} done, {4 - len(first)} to run" in done.stdout
    assert "| x=2.0 | 2 | 2.05 [1.41, 2.69] |" in done.stdout and (out / "summary.md").exists()
    assert len(load_records(out)) == 4
    record = json.loads((out / "baseline" / "seed1" / "result.json").read_text())
    assert record["params"] == {"delay_s": 1.0} and record["result"]["score"] == 1.1


def test_cli_refuses_bad_input(tmp_path):
    out = subprocess.run([str(BIN / "mlre"), "sweep", "nothing_here", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "neither a .toml config nor 'module:function'" in out.stderr
