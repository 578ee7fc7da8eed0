"""slurm/ templates run for real on scripts/slurm-local.sh's one-node Slurm (fixture `slurm`,
conftest.py), through slurm/submit.sh with slurm/site.local.env, as a user would:

* node.sbatch: `sbatch --wait`, 2 ranks under `srun --mpi=pmix`, a tiny real sweep that passes
  `passlab inspect --check`;
* array.sbatch: 2 array tasks over one results directory; every task runs exactly once, both
  array tasks take part, and the index (sweep.h5) lists every run;
* preemption: `scancel --signal=USR1 --batch` on a running sweep: the job stops (the running task
  checkpointed at its next step), is requeued and finishes; no finished run is redone, none is lost;
* plain `scancel`: the ranks log the SIGTERM, checkpoint and exit 75; a second job resumes the stage.

Every wait has a timeout, so a broken Slurm fails the test instead of hanging it. Tasks are
ordered with the test-only hook PASSLAB_TEST_HOLD_TASK (a task waits for a file), not with sleeps.
"""
import collections
import os
import pathlib
import re
import socket
import subprocess
import time

import h5py
import pytest

ROOT = pathlib.Path(os.environ.get("PASSLAB_SOURCE_DIR") or pathlib.Path(__file__).resolve().parents[2])

SUBMIT = ROOT / "slurm" / "submit.sh"
SITE = ROOT / "slurm" / "site.local.env"
FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")

SWEEP_TOML = """\
[experiment]
name = "slurm_test"
[data]
dataset = "fashion_mnist"
store = "{store}"
limit_train = 128
limit_test = 64
val_fraction = 0.25
[model]
arch = "resnet20"
ghost_batch = 16  # two BatchNorm groups per batch of 32: run groups of 2 ranks (cluster2) work
[dense]
epochs = 1
batch_size = 32
[search]
steps = 3
batch_size = 32
[finetune]
epochs = 1
batch_size = 32
[eval]
latency_batch = 2
latency_repeats = 1
latency_warmup = 0
[sweep]
budgets = [0.5]
methods = {methods}
seeds = {seeds}
[dist]
ranks_per_run = 1
[output]
dir = "{out}"
progress = "none"
"""


def binary():
    b = os.environ.get("PASSLAB_BINARY") or str(ROOT / "build" / "passlab")
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.skip("passlab binary not found (set PASSLAB_BINARY or build build/passlab)")
    return b


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    if not FASHION_MNIST.is_dir():
        pytest.skip(f"{FASHION_MNIST} missing (Debian's dataset-fashion-mnist)")
    path = tmp_path_factory.mktemp("slurm_data") / "fm14.h5"
    r = subprocess.run([binary(), "prepare", "fashion-mnist", "--size", "14", "--out", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return path


def make_sweep(d, store, methods, seeds):
    """Writes d/sweep.toml; returns (config, results dir, hand-out order [(kind, id)])."""
    out = d / "results"
    cfg = d / "sweep.toml"
    cfg.write_text(SWEEP_TOML.format(store=store, out=out, methods=list(methods), seeds=list(seeds))
                   .replace("'", '"'))
    r = subprocess.run([binary(), "run", str(cfg), "--dry-run"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("hand-out order"))
    order = re.findall(r"(dense|prune) ([0-9a-f]+)", line)
    assert order, line
    return cfg, out, order


def job_env(slurm, **extra):
    env = dict(slurm["env"], PASSLAB_SITE=str(SITE), PASSLAB_BIN=binary(), PASSLAB_LOG="info")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def submit(env, *args, timeout=60):
    r = subprocess.run(["timeout", str(timeout), "bash", str(SUBMIT), "--parsable", *map(str, args)],
                       env=env, capture_output=True, text=True)
    return r


def job_fields(env, job):
    """scontrol show job as {field: value} for each record (one per array task)."""
    r = subprocess.run(["timeout", "20", "scontrol", "show", "job", "-o", str(job)], env=env,
                       capture_output=True, text=True)
    recs = []
    for line in r.stdout.splitlines():
        recs.append(dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", line)))
    return recs


def wait_for(what, pred, timeout_s, poll=0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def journal(out):
    """[(holder, event, id)] from <out>/journal.tsv."""
    p = out / "journal.tsv"
    if not p.exists():
        return []
    rows = []
    for line in p.read_text().splitlines():
        f = line.split("\t")
        if len(f) >= 4:
            rows.append((f[1], f[2], f[3]))
    return rows


def check_results(out, ids):
    """Every task ended exactly once, the result files pass inspect --check and are complete."""
    j = journal(out)
    ends = collections.Counter(i for _, e, i in j if e == "end")
    assert ends == collections.Counter(ids), f"journal ends {dict(ends)} != one per task {ids}\n{j}"
    assert not [r for r in j if r[1] == "fail"], j
    r = subprocess.run([binary(), "inspect", "--check", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([binary(), "inspect", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for i in ids:
        assert re.search(rf"^complete\s+{i}\b", r.stdout, re.M), f"{i} not complete:\n{r.stdout}"
    return j


def log_of(d):
    return "\n".join(p.read_text(errors="replace") for p in sorted(d.glob("*.out")))


def submit_one_rank(env, cfg, output):
    """node.sbatch on one rank, not waited for; returns the job id."""
    r = submit(env, "--ntasks-per-node=1", f"--output={output}", SUBMIT.parent / "node.sbatch", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip().split(";")[0]


def started(out, task):
    return ("start", task) in [(e, i) for _, e, i in journal(out)]


def ended(env, job, start_requeued=False):
    """The job's record once it has ended, else None. start_requeued: a requeued job waits ~2 min
    before it may start again; start it at once, but only when no slurmstepd of its previous launch
    is left (as after those 2 min)."""
    rec = job_fields(env, job)
    if not rec:
        return None
    if start_requeued and rec[0].get("JobState") == "PENDING":
        stepds = subprocess.run(["pgrep", "-f", rf"^slurmstepd: \[{job}\."], capture_output=True).stdout
        if not stepds.strip():
            subprocess.run(["timeout", "20", "scontrol", "update", f"JobId={job}", "StartTime=now"], env=env,
                           capture_output=True)
    return rec[0] if rec[0].get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT") else None


def test_node_template_two_ranks_srun_pmix(slurm, store, tmp_path):
    cfg, out, order = make_sweep(tmp_path, store, ["pass", "l1_global", "random_uniform"], [0])
    env = job_env(slurm)
    r = submit(env, "--wait", f"--output={tmp_path}/%x-%j.out", SUBMIT.parent / "node.sbatch", cfg, timeout=120)
    log = log_of(tmp_path)
    assert r.returncode == 0, f"sbatch --wait: {r.returncode}\n{r.stdout}\n{r.stderr}\n{log}"
    job = r.stdout.strip().split(";")[0]
    rec = job_fields(env, job)
    assert rec and rec[0].get("JobState") == "COMPLETED" and rec[0].get("ExitCode") == "0:0", rec
    # Two ranks found by the dist runtime under srun (PMIx), one run group each.
    assert "2 ranks via srun" in log and "2 run group(s)" in log, log
    assert "passlab: step exited with 0" in log, log
    check_results(out, [i for _, i in order])


def test_array_template_shares_one_results_dir(slurm, store, tmp_path):
    cfg, out, order = make_sweep(tmp_path, store, ["l1_global", "random_uniform"], [0, 1])
    dense = [i for k, i in order if k == "dense"]
    assert len(dense) == 2 and len(order) == 6, order
    # The first dense task waits until the second one's file exists: whichever array task takes it,
    # the other must run the second, so both take part. The last task waits for the index written
    # by the launcher that ends first, so the last one to end writes the complete index.
    hold = f"{dense[0]}={out}/dense/{dense[1]}.h5,{order[-1][1]}={out}/sweep.h5"
    env = job_env(slurm, PASSLAB_TEST_HOLD_TASK=hold)
    r = submit(env, "--wait", "--array=0-1", "--ntasks-per-node=1", f"--output={tmp_path}/%x-%A_%a.out",
               SUBMIT.parent / "array.sbatch", cfg, timeout=120)
    log = log_of(tmp_path)
    assert r.returncode == 0, f"sbatch --wait: {r.returncode}\n{r.stdout}\n{r.stderr}\n{log}"
    job = r.stdout.strip().split(";")[0]
    recs = job_fields(env, job)
    assert sorted(x.get("ArrayTaskId") for x in recs) == ["0", "1"], recs
    assert all(x.get("JobState") == "COMPLETED" and x.get("ExitCode") == "0:0" for x in recs), recs
    assert log.count("passlab: step exited with 0") == 2, log
    j = check_results(out, [i for _, i in order])
    starts = collections.Counter(i for _, e, i in j if e == "start")
    assert all(n == 1 for n in starts.values()) and len(starts) == 6, starts
    holders = {h.split(" g")[0] for h, e, _ in j if e == "end"}  # "host pid start gN" -> one per process
    assert len(holders) == 2, f"expected both array tasks to run tasks: {holders}\n{j}"
    with h5py.File(out / "sweep.h5", "r") as f:
        listed = set(f["runs"].keys())
        status = [s.decode() if isinstance(s, bytes) else str(s) for s in f["table"]["status"][()]]
    assert listed == {i for _, i in order}, listed
    assert status == ["complete"] * 6, status


def test_preemption_usr1_requeues_and_finishes(slurm, store, tmp_path):
    cfg, out, order = make_sweep(tmp_path, store, ["pass", "l1_global", "random_uniform"], [0])
    ids = [i for _, i in order]
    dense, p1, p2 = ids[0], ids[1], ids[2]
    go1, go2 = tmp_path / "go1", tmp_path / "go2"
    # p1 runs while the job is signalled; p2 cannot start before the job has been requeued.
    env = job_env(slurm, PASSLAB_TEST_HOLD_TASK=f"{p1}={go1},{p2}={go2}", PASSLAB_STOP_GRACE=20)
    job = submit_one_rank(env, cfg, f"{tmp_path}/%x-%j.out")
    try:
        wait_for(f"task {p1} to start", lambda: started(out, p1), 90)
        first = [x for x in journal(out)]
        holder1 = next(h for h, e, i in first if i == p1 and e == "start")
        s = subprocess.run(["timeout", "20", "scancel", "--signal=USR1", "--batch", job], env=env,
                           capture_output=True, text=True)
        assert s.returncode == 0, s.stdout + s.stderr
        wait_for("the batch script to get USR1", lambda: "USR1 received" in log_of(tmp_path), 30)
        # The script forwards the signal to the srun step at once; leave it time to reach the rank
        # before p1 may end. (Should it arrive later, p2's hold keeps the rank busy and the script
        # requeues after PASSLAB_STOP_GRACE: a slower but equally valid preemption.)
        time.sleep(2)
        dense_file, p1_file = out / "dense" / f"{dense}.h5", out / "runs" / f"{p1}.h5"
        go1.touch()

        def requeued():
            rec = job_fields(env, job)
            return rec and int(rec[0].get("Restarts", "0")) >= 1 and rec[0].get("JobState") in ("PENDING", "RUNNING", "COMPLETED")
        wait_for("the job to be requeued", requeued, 90)
        # p1 exists only if the stop reached the rank after p1 had finished (see `graceful`).
        stamps = {p: p.stat().st_mtime_ns for p in (dense_file, p1_file) if p.exists()}
        go2.touch()

        rec = wait_for("the requeued job to finish", lambda: ended(env, job, start_requeued=True), 120, poll=1)
    finally:
        go1.touch()
        go2.touch()
        subprocess.run(["timeout", "20", "scancel", job], env=env, capture_output=True)
    log = log_of(tmp_path)
    assert rec["JobState"] == "COMPLETED" and rec["ExitCode"] == "0:0", f"{rec}\n{log}"
    assert int(rec["Restarts"]) == 1, rec
    assert "restart 0," in log and "restart 1," in log, log
    assert "passlab: requeueing job" in log, log
    j = check_results(out, ids)
    # Nothing finished before the stop was redone, and the files were not rewritten.
    starts = collections.Counter(i for _, e, i in j if e == "start")
    assert starts[dense] == 1, j
    graceful = "passlab: step exited with 75" in log
    if graceful:
        # The stop reached the rank before p1 trained: p1 checkpointed its first training stage at
        # its first step and stopped (not failed); the requeued job resumed it and finished it.
        assert ("stop", p1) in {(e, i) for h, e, i in j if h == holder1}, j
        assert starts[p1] == 2, j
        ends_first = {i for h, e, i in j if e == "end" and h == holder1}
        assert ends_first == {dense}, j
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # What the first launch left is done by the second (another process).
    later = {i for h, e, i in j if e == "end" and h != holder1}
    assert set(ids[2:]) <= later, j


def test_scancel_sigterm_checkpoints_and_a_relaunch_resumes(slurm, store, tmp_path):
    """Plain `scancel JOB`: Slurm sends SIGTERM to every process of the job, the ranks included
    (SIGKILL KillWait later). The ranks log it, checkpoint the running stage and exit 75 within
    KillWait; nothing is recorded complete; a second job resumes the stage from its checkpoint and
    finishes the sweep. (SIGTERM to the srun process itself is different: srun answers it by
    killing the step's tasks at once, "srun: forcing job termination", which nothing can
    intercept; the relaunch then resumes from the stage's last periodic checkpoint.)"""
    cfg, out, order = make_sweep(tmp_path, store, ["random_uniform"], [0])
    ids = [i for _, i in order]
    dense = ids[0]
    go = tmp_path / "go"
    # The dense task waits for `go`; the signal arrives while it waits, so its training stops
    # at its first step with a checkpoint.
    env = job_env(slurm, PASSLAB_TEST_HOLD_TASK=f"{dense}={go}", PASSLAB_NO_REQUEUE=1)
    job = submit_one_rank(env, cfg, f"{tmp_path}/first-%j.out")
    try:
        wait_for(f"task {dense} to start", lambda: started(out, dense), 90)
        s = subprocess.run(["timeout", "20", "scancel", job], env=env, capture_output=True, text=True)
        assert s.returncode == 0, s.stdout + s.stderr
        # The batch script also gets SIGTERM and forwards SIGUSR1 through srun; whichever reaches
        # the rank first is the request (a second within 2 s is the same one).
        logged = re.compile(r"stop requested: SIG(TERM|USR1) received")
        wait_for("the rank to log the signal", lambda: logged.search(log_of(tmp_path)), 30)
        go.touch()
        wait_for("the job to end", lambda: ended(env, job), 90, poll=1)
        wait_for("the batch script's last line", lambda: "passlab: step exited with" in log_of(tmp_path), 30)
    finally:
        go.touch()
        subprocess.run(["timeout", "20", "scancel", job], env=env, capture_output=True)
    log = log_of(tmp_path)
    assert "passlab: step exited with 75" in log, log
    checkpoint = out / "work" / dense / "dense.ckpt.h5"
    assert checkpoint.is_file(), log
    assert not (out / "dense" / f"{dense}.h5").exists(), log
    assert [e for _, e, i in journal(out) if i == dense] == ["start", "stop"], journal(out)

    # One rank again: the rank that resumes is the one whose info lines are printed.
    r = submit(job_env(slurm), "--wait", "--ntasks-per-node=1", f"--output={tmp_path}/second-%j.out",
               SUBMIT.parent / "node.sbatch", cfg,
               timeout=180)
    second = "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("second-*.out")))
    assert r.returncode == 0, r.stdout + r.stderr + second
    assert f"resumed from {checkpoint} at epoch " in second, second
    check_results(out, ids)


def test_timeout_exit_requeues_a_bounded_number_of_times(slurm, store, tmp_path):
    """Exit 4 (a collective timed out: a rank died or hung) requeues the job while it has been
    restarted fewer than PASSLAB_TIMEOUT_REQUEUES times, then ends it with 4. The step is a
    stand-in for passlab that exits 4 at once (a real hang takes dist.timeout_s)."""
    cfg, out, order = make_sweep(tmp_path, store, ["random_uniform"], [0])
    fake = tmp_path / "passlab-exits-4"
    fake.write_text("#!/bin/sh\necho \"stand-in run $SLURM_RESTART_COUNT\" >&2\nexit 4\n")
    fake.chmod(0o755)
    env = job_env(slurm, PASSLAB_TIMEOUT_REQUEUES=1)
    env["PASSLAB_BIN"] = str(fake)
    job = submit_one_rank(env, cfg, f"{tmp_path}/%x-%j.out")
    try:
        rec = wait_for("the job to end for good", lambda: ended(env, job, start_requeued=True), 120, poll=1)
    finally:
        subprocess.run(["timeout", "20", "scancel", job], env=env, capture_output=True)
    log = log_of(tmp_path)
    assert int(rec["Restarts"]) == 1, f"{rec}\n{log}"
    assert rec["JobState"] == "FAILED" and rec["ExitCode"] == "4:0", f"{rec}\n{log}"
    assert "requeueing (restart 1 of at most 1, PASSLAB_TIMEOUT_REQUEUES)" in log, log
    assert "a collective timed out (exit 4) after 1 restart(s) (PASSLAB_TIMEOUT_REQUEUES=1): not requeued" in log, log


def test_real_collective_timeout_under_srun_ends_the_job_with_4(slurm, store, tmp_path):
    """A real MPI_Abort(4) under srun --mpi=pmix: passlab's fault helper on 2 tasks, rank 1 hung,
    rank 0's collective watchdog aborting the job (tests/dist/helpers/fault_helper.cpp, timeout
    2 s). srun must report the aborting rank's 4, not the status of the task it killed (137), for
    the template's exit-4 rule to apply to a real timeout and not only to the stand-in above: with
    PASSLAB_TIMEOUT_REQUEUES=0 the job fails with 4 and is not requeued."""
    helper = pathlib.Path(binary()).parent / "tests" / "passlab_dist_fault_helper"
    if not helper.is_file():
        pytest.skip(f"{helper} not built")
    cfg, out, order = make_sweep(tmp_path, store, ["random_uniform"], [0])
    fake = tmp_path / "passlab-hangs"
    fake.write_text(f"#!/bin/sh\nexec {helper} hang\n")  # the template's "run CONFIG ..." is ignored
    fake.chmod(0o755)
    env = job_env(slurm, PASSLAB_TIMEOUT_REQUEUES=0)
    env["PASSLAB_BIN"] = str(fake)
    r = submit(env, "--wait", f"--output={tmp_path}/%x-%j.out", SUBMIT.parent / "node.sbatch", cfg, timeout=120)
    log = log_of(tmp_path)
    job = r.stdout.strip().split(";")[0]
    rec = job_fields(env, job)
    assert "did not complete within dist.timeout_s" in log, log
    assert rec and rec[0].get("JobState") == "FAILED" and rec[0].get("ExitCode") == "4:0", f"{rec}\n{log}"
    assert "a collective timed out (exit 4) after 0 restart(s) (PASSLAB_TIMEOUT_REQUEUES=0): not requeued" in log, log


def test_step_launch_failure_fails_the_job(slurm, store, tmp_path):
    """srun (22.05) exits 0 when its tasks fail to launch; the template must not report that as
    a finished sweep. A launch failure is provoked by occupying the PMIx socket path of the next
    job's step 0 (what a requeued job relaunched too early meets)."""
    cfg, out, order = make_sweep(tmp_path, store, ["l1_global"], [0])
    env = job_env(slurm)
    show = subprocess.run(["timeout", "20", "scontrol", "show", "config"], env=env, capture_output=True, text=True)
    spool = re.search(r"^SlurmdSpoolDir\s*=\s*(\S+)", show.stdout, re.M)
    nxt = re.search(r"^NEXT_JOB_ID\s*=\s*(\d+)", show.stdout, re.M)
    assert spool and nxt, show.stdout
    socks = []
    try:
        for j in range(int(nxt.group(1)), int(nxt.group(1)) + 3):  # tests run serially: the next job is ours
            s = socket.socket(socket.AF_UNIX)
            s.bind(f"{spool.group(1)}/stepd.slurm.pmix.{j}.0")
            socks.append(s)
        r = submit(env, "--wait", f"--output={tmp_path}/%x-%j.out", SUBMIT.parent / "node.sbatch", cfg, timeout=120)
    finally:
        for s in socks:
            path = s.getsockname()
            s.close()
            os.unlink(path)
    log = log_of(tmp_path)
    if "launch failed" not in log:
        assert "passlab: step exited with 0" in log, f"the job neither failed to launch nor ran:\n{log}"
        pytest.skip("this Slurm's PMIx plugin does not use stepd.slurm.pmix.JOB.STEP: no launch failure provoked")
    assert r.returncode != 0, f"sbatch --wait succeeded although the step never ran:\n{log}"
    assert "the step's tasks failed to launch" in log and "passlab: step exited with 1" in log, log
    assert not (out / "journal.tsv").exists() or not journal(out), journal(out)
