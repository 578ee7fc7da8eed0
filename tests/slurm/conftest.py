"""The slurm/ templates against a real one-node Slurm (scripts/slurm-local.sh).

Session fixture `slurm`: takes a machine-wide lock (one Slurm per machine; concurrent test runs
wait for each other), starts the local cluster unless it already runs, and stops it at the end
if it started it. The tests are skipped, with the reason, only where Slurm cannot start here
(no root and no sudo, no apt-get to install it, another Slurm already owns the machine); any
other failure to start is an error. When every test is skipped the session exits 77, which
ctest reports as "Skipped" (SKIP_RETURN_CODE), never as a silent pass.
"""
import fcntl
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(os.environ.get("PASSLAB_SOURCE_DIR") or pathlib.Path(__file__).resolve().parents[2])
SCRIPT = ROOT / "scripts" / "slurm-local.sh"
STATE = pathlib.Path(os.environ.get("PASSLAB_SLURM_DIR", "/tmp/passlab-slurm"))
LOCK = pathlib.Path("/tmp/passlab-slurm.lock")


def cannot_start_reason(own_pid_files):
    """Why a Slurm cannot start here, or None; own_pid_files: the PID files of the daemons of the
    cluster to start (they may run already). Also used by tests/cluster2."""
    if os.geteuid() != 0 and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0:
        return "Slurm needs root for slurmd: not root and no password-less sudo"
    have = all(shutil.which(c) for c in ("slurmctld", "slurmd", "sbatch", "munged"))
    if not have and shutil.which("apt-get") is None:
        return "Slurm is not installed and there is no apt-get to install it"
    ours = set()
    for f in own_pid_files:
        try:
            ours.add(pathlib.Path(f).read_text().strip())
        except OSError:
            pass
    running = subprocess.run(["pgrep", "-x", "slurmctld|slurmd"], capture_output=True, text=True).stdout.split()
    other = [p for p in running if p not in ours]
    if other:
        return f"another Slurm runs on this machine (PIDs {' '.join(other)}); one Slurm per machine"
    return None


@pytest.fixture(scope="session")
def slurm():
    """dict(env=<environment with SLURM_CONF>, conf=<slurm.conf>)."""
    LOCK.touch(exist_ok=True)
    lock = open(LOCK, "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # ctest's own timeout bounds this wait
    try:
        reason = cannot_start_reason([STATE / "slurmctld.pid", STATE / "slurmd.pid"])
        if reason:
            pytest.skip(f"Slurm cannot start here: {reason}")
        env = dict(os.environ, PASSLAB_SLURM_DIR=str(STATE))
        was_running = subprocess.run(["bash", str(SCRIPT), "status"], env=env, capture_output=True).returncode == 0
        r = subprocess.run(["timeout", "300", "bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True)
        assert r.returncode == 0, f"scripts/slurm-local.sh start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        env["SLURM_CONF"] = str(STATE / "slurm.conf")
        try:
            yield {"env": env, "conf": env["SLURM_CONF"]}
        finally:
            if not was_running:
                subprocess.run(["timeout", "60", "bash", str(SCRIPT), "stop"], env=env)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def pytest_sessionfinish(session, exitstatus):
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is None or exitstatus != 0:
        return
    if tr.stats.get("skipped") and not tr.stats.get("passed") and not tr.stats.get("failed"):
        session.exitstatus = 77
