"""Shared pytest fixtures.

analysis_sweep (session scope): a tiny real passlab sweep, made once per test session by the
passlab binary (PASSLAB_BINARY, set by ctest; else build/passlab): Fashion-MNIST from Debian
resized to 14 px, ResNet-20, methods pass and l1_global, budgets 60 % and 40 % of MACs, seeds 0
and 1 (2 dense models, 8 prune runs), plus one random_uniform task (60 %, seed 0) that is made to
fail (PASSLAB_TEST_FAIL_TASK) so that the sweep leaves a real failure record. PASS runs keep
their visual prompt through fine-tuning (finetune.keep_prompt). Skipped when the
binary or the dataset is missing.
"""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")

SWEEP_TOML = """\
[experiment]
name = "analysis_test"
[data]
dataset = "fashion_mnist"
store = "{store}"
limit_train = 160
limit_test = 64
val_fraction = 0.2
[model]
arch = "resnet20"
[dense]
epochs = 1
batch_size = 32
[search]
steps = 4
batch_size = 32
log_every = 4
lr = 0.01
[finetune]
epochs = 2
batch_size = 64
keep_prompt = true
[eval]
latency_batch = 2
latency_repeats = 1
latency_warmup = 1
[sweep]
budgets = [0.6, 0.4]
methods = ["pass", "l1_global", "random_uniform"]
seeds = [0, 1]
exclude = [{{ method = "random_uniform", budget = 0.4 }}, {{ method = "random_uniform", seed = 1 }}]
[dist]
ranks_per_run = 1
[output]
dir = "{out}"
"""


def passlab_binary():
    b = os.environ.get("PASSLAB_BINARY") or str(ROOT / "build" / "passlab")
    return b if os.path.isfile(b) and os.access(b, os.X_OK) else None


@pytest.fixture(scope="session")
def analysis_sweep(tmp_path_factory):
    """dict(results=<output.dir>, store=<store .h5>, config=<toml path>, failed_id=<run id of the
    task made to fail>, injected=<whether this passlab honours PASSLAB_TEST_FAIL_TASK>)."""
    binary = passlab_binary()
    if binary is None:
        pytest.skip("passlab binary not found (set PASSLAB_BINARY or build build/passlab)")
    if not FASHION_MNIST.is_dir():
        pytest.skip(f"{FASHION_MNIST} missing (Debian's fashion-mnist data)")
    d = tmp_path_factory.mktemp("analysis_sweep")
    store, out, cfg = d / "fm14.h5", d / "results", d / "sweep.toml"
    env = dict(os.environ, PASSLAB_LOG="warn", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([binary, "prepare", "fashion-mnist", "--size", "14", "--out", str(store)], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    cfg.write_text(SWEEP_TOML.format(store=store, out=out))
    plan = subprocess.run([binary, "run", str(cfg), "--dry-run"], env=env, capture_output=True, text=True)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    failed_id = next(line.split()[0] for line in plan.stdout.splitlines() if " random_uniform " in line)
    env["PASSLAB_TEST_FAIL_TASK"] = failed_id + "@99"
    r = subprocess.run([binary, "run", str(cfg)], env=env, capture_output=True, text=True)
    # Exit status 1: some task failed (the injected one); anything else is a real problem.
    assert r.returncode in (0, 1), f"passlab run failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    runs = sorted((out / "runs").glob("*.h5"))
    assert len(runs) == 9, [p.name for p in runs]
    injected = "injected failure" in r.stdout + r.stderr
    assert (r.returncode == 1) == injected, r.stdout[-4000:] + r.stderr[-4000:]
    return {"results": out, "store": store, "config": cfg, "failed_id": failed_id, "injected": injected}


def run_analysis(*args, cwd=ROOT):
    """python -m analysis ARGS from the source root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=cwd, capture_output=True, text=True)
