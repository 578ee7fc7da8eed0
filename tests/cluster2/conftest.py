"""A real two-node cluster on this machine (scripts/cluster-2node.sh): two network + UTS
namespaces, passlab-n1 (10.213.7.1) and passlab-n2 (10.213.7.2), joined by a veth pair.

Session fixture `cluster`: takes the machine-wide Slurm lock of tests/slurm (one Slurm per
machine, and the names of this cluster are fixed), starts the cluster unless it already runs and
stops it at the end if it started it. Fixture `cluster_slurm` adds the two-node Slurm. Tests are
skipped, with the reason, only where the cluster cannot exist here (not root, namespaces not
permitted: the script's exit 77; for Slurm also no apt-get, another Slurm running); any other
failure to start is an error. When every test is skipped the session exits 77, which ctest
reports as "Skipped" (SKIP_RETURN_CODE), never as a silent pass.
"""
import fcntl
import importlib.util
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(os.environ.get("PASSLAB_SOURCE_DIR") or pathlib.Path(__file__).resolve().parents[2])
SCRIPT = ROOT / "scripts" / "cluster-2node.sh"
STATE = pathlib.Path(os.environ.get("PASSLAB_CLUSTER_DIR", "/tmp/passlab-cluster2"))
LOCK = pathlib.Path("/tmp/passlab-slurm.lock")

# tests/slurm's conftest, loaded by path (both files are named conftest.py): its check whether a
# Slurm can start here, and its exit-77 hook.
_spec = importlib.util.spec_from_file_location("slurm_conftest", ROOT / "tests" / "slurm" / "conftest.py")
slurm_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(slurm_conftest)


def script(*args, timeout=120, **kw):
    env = dict(os.environ, PASSLAB_CLUSTER_DIR=str(STATE))
    return subprocess.run(["timeout", str(timeout), "bash", str(SCRIPT), *map(str, args)], env=env,
                          capture_output=True, text=True, **kw)


def script_exec(node, *cmd, timeout=300, env=None):
    e = dict(os.environ, PASSLAB_CLUSTER_DIR=str(STATE))
    e.update({k: str(v) for k, v in (env or {}).items()})
    return subprocess.run(["timeout", str(timeout), "bash", str(SCRIPT), "exec", node, *map(str, cmd)], env=e,
                          capture_output=True, text=True)


@pytest.fixture(scope="session")
def cluster():
    """The running cluster; yields the state directory."""
    if os.geteuid() != 0:
        pytest.skip("the two-node cluster needs root (network namespaces, nsenter)")
    LOCK.touch(exist_ok=True)
    lock = open(LOCK, "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # ctest's own timeout bounds this wait
    try:
        was_running = script("status").returncode == 0
        r = script("start")
        if r.returncode == 77:
            pytest.skip(f"the two-node cluster cannot start here: {r.stderr.strip()}")
        assert r.returncode == 0, f"scripts/cluster-2node.sh start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        try:
            yield STATE
        finally:
            if not was_running:
                r = script("stop", timeout=120)
                assert r.returncode == 0, r.stdout + r.stderr
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


@pytest.fixture(scope="session")
def cluster_slurm(cluster):
    """The cluster with its two-node Slurm; yields the environment for client commands (run them
    inside passlab-n1 with script_exec)."""
    reason = slurm_conftest.cannot_start_reason(sorted(STATE.glob("slurm*.pid")))
    if reason:
        pytest.skip(f"Slurm cannot start here: {reason}")
    was_running = (STATE / "slurm.conf").exists() and script("status").stdout.count("slurm: PIDs") == 1
    r = script("start-slurm", timeout=300)
    assert r.returncode == 0, f"scripts/cluster-2node.sh start-slurm failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    try:
        yield {"SLURM_CONF": str(STATE / "slurm.conf")}
    finally:
        if not was_running:
            r = script("stop-slurm", timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr


# "Skipped" (77) when every test was skipped: tests/slurm's hook.
pytest_sessionfinish = slurm_conftest.pytest_sessionfinish
