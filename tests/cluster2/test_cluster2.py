"""passlab across two nodes of a real cluster on this machine (scripts/cluster-2node.sh; fixtures
in conftest.py): two network namespaces with their own host names and addresses, MPI over TCP on
the veth pair between them, a shared filesystem (this machine's).

* mpirun across both nodes: one run group of 2 ranks, one rank per node, gives the same kept
  channels and top-1 as the same sweep with both ranks on one node; the log names both hosts;
* two launchers, one per node, over one results directory: every task runs exactly once and both
  nodes take part;
* a node lost mid-task (every process in its namespace killed): the job ends within the
  collective timeout naming the lost host; a relaunch right away leaves the lost node's claim
  alone (its holder lives on another host: only its heartbeat can tell), a relaunch after the
  heartbeat timeout takes it over and completes the sweep; finished files are untouched;
* Slurm: slurm/multinode.sbatch across both nodes under srun --mpi=pmix, and a job array.

The sweeps are the tiny ones of tests/slurm (helpers imported from there).
"""
import collections
import os
import pathlib
import re
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import ROOT, script_exec

sys.path.insert(0, str(ROOT / "tests" / "slurm"))
import test_slurm as common  # noqa: E402  (sweep template, store fixture, journal and result checks)

store = common.store
N1, N2 = "passlab-n1", "passlab-n2"
# Variables the ranks need on every node (mpirun passes the rest of the environment only to local ranks).
FORWARD = ("PASSLAB_LOG", "PASSLAB_TEST_HOLD_TASK", "HDF5_USE_FILE_LOCKING")


def mpirun_cmd(cfg, *mpirun_args, sets=()):
    cmd = ["mpirun", "-np", "2", "--bind-to", "none", *mpirun_args]
    for v in FORWARD:
        cmd += ["-x", v]
    cmd += [common.binary(), "run", str(cfg), "--set", "dist.ranks_per_run=2", "--set", "dist.threads_per_rank=1"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def run_env(**extra):
    env = {"PASSLAB_LOG": "info", "PASSLAB_TEST_HOLD_TASK": "", "HDF5_USE_FILE_LOCKING": "FALSE"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def result_files(out):
    """{run id: path} for every dense and prune file."""
    return {p.stem: p for p in sorted(out.glob("dense/*.h5")) + sorted(out.glob("runs/*.h5"))}


def compare_runs(pa, pb):
    """Asserts that two result files of one task agree: kept channel indices equal, weights and
    test loss within float noise, top-1 within one tied image; returns what was compared."""
    with h5py.File(pa, "r") as a, h5py.File(pb, "r") as b:
        sa, sb = a["summary"].attrs, b["summary"].attrs
        keep = sorted(a["keep"]) if "keep" in a else []
        assert keep == (sorted(b["keep"]) if "keep" in b else []), pa.stem
        for g in keep:
            assert np.array_equal(a["keep"][g][()], b["keep"][g][()]), (pa.stem, g)
        names = sorted(a["weights"])
        assert names == sorted(b["weights"]) and names, pa.stem
        dw = max(float(np.max(np.abs(a["weights"][k][()] - b["weights"][k][()]), initial=0.0)) for k in names)
        # The same sums in another transport (TCP instead of shared memory): float noise at most.
        assert dw <= 1e-5, (pa.stem, dw)
        if "test_loss" in sa:
            assert float(sa["test_loss"]) == pytest.approx(float(sb["test_loss"]), rel=1e-5), pa.stem
        # 64 test images: a tie may flip one.
        assert abs(float(sa["top1"]) - float(sb["top1"])) <= 1.0 / 64 + 1e-12, (pa.stem, sa["top1"], sb["top1"])
        return (f"{pa.stem}: top-1 {float(sa['top1']):.4f} / {float(sb['top1']):.4f}, {len(keep)} kept-index groups "
                f"equal, {len(names)} weight tensors, max |difference| {dw:g}")


def test_mpirun_one_rank_per_node_matches_one_node(cluster, store, tmp_path):
    (tmp_path / "two").mkdir()
    (tmp_path / "one").mkdir()
    two = common.make_sweep(tmp_path / "two", store, ["pass", "l1_global"], [0])
    one = common.make_sweep(tmp_path / "one", store, ["pass", "l1_global"], [0])
    assert [i for _, i in two[2]] == [i for _, i in one[2]]  # the run ids do not depend on output.dir
    t0 = time.monotonic()
    r2 = script_exec(N1, *mpirun_cmd(two[0]), env=run_env())  # the default hostfile: one slot per node
    t_two = time.monotonic() - t0
    assert r2.returncode == 0, r2.stdout + r2.stderr
    t0 = time.monotonic()
    r1 = script_exec(N1, *mpirun_cmd(one[0], "--host", f"{N1}:2"), env=run_env())
    t_one = time.monotonic() - t0
    assert r1.returncode == 0, r1.stdout + r1.stderr
    print(f"two nodes: {t_two:.1f} s, one node: {t_one:.1f} s")
    # The runtime found one local rank per node there, two here, and names the hosts.
    assert "2 ranks via mpirun (1 per node), 1 run group(s) of 2" in r2.stderr, r2.stderr
    assert f"dist: hosts: {N1} (rank 0), {N2} (rank 1)" in r2.stderr, r2.stderr
    assert "2 ranks via mpirun (2 per node), 1 run group(s) of 2" in r1.stderr, r1.stderr
    assert f"dist: hosts: {N1} (ranks 0-1)" in r1.stderr, r1.stderr
    ids = [i for _, i in two[2]]
    common.check_results(two[1], ids)
    common.check_results(one[1], ids)
    a, b = result_files(two[1]), result_files(one[1])
    assert sorted(a) == sorted(b) == sorted(ids)
    for i in ids:
        print("two nodes / one node:", compare_runs(a[i], b[i]))


def test_two_launchers_on_two_nodes_share_one_results_dir(cluster, store, tmp_path):
    cfg, out, order = common.make_sweep(tmp_path, store, ["l1_global", "random_uniform"], [0, 1])
    dense = [i for k, i in order if k == "dense"]
    assert len(dense) == 2 and len(order) == 6, order
    # As tests/slurm's array test: whoever takes the first dense model waits for the second one's
    # file, so the other launcher must run it: both nodes take part.
    env = run_env(PASSLAB_TEST_HOLD_TASK=f"{dense[0]}={out}/dense/{dense[1]}.h5,{order[-1][1]}={out}/sweep.h5")
    procs = [subprocess.Popen(["timeout", "300", "bash", str(ROOT / "scripts" / "cluster-2node.sh"), "exec", node,
                               common.binary(), "run", str(cfg)],
                              env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for node in (N1, N2)]
    logs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)
    j = common.check_results(out, [i for _, i in order])
    starts = collections.Counter(i for _, e, i in j if e == "start")
    assert all(n == 1 for n in starts.values()) and len(starts) == 6, starts
    hosts = {h.split()[0] for h, e, _ in j if e == "end"}  # holder: "host pid start gN"
    assert hosts == {N1, N2}, j


def claim_holder(out, task):
    p = out / "claims" / f"{task}.claim"
    return p, (p.read_text().split() if p.exists() else [])


def test_node_lost_mid_task(cluster, store, tmp_path):
    cfg, out, order = common.make_sweep(tmp_path, store, ["l1_global", "random_uniform"], [0])
    ids = [i for _, i in order]
    dense, p1, p2 = ids
    go = tmp_path / "go"
    heartbeat_s, timeout_s = 20, 30
    sets = (f"sweep.heartbeat_timeout_s={heartbeat_s}", f"dist.timeout_s={timeout_s}")
    # Rank 0, the run group's leader and so the claim holder, on passlab-n2; mpirun on passlab-n1.
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{N2}\n{N1}\n")
    cmd = mpirun_cmd(cfg, "--mca", "rmaps", "seq", "--hostfile", hosts, sets=sets)
    e = dict(os.environ, PASSLAB_CLUSTER_DIR=str(cluster), **run_env(PASSLAB_TEST_HOLD_TASK=f"{p1}={go}"))
    job = subprocess.Popen(["timeout", "300", "bash", str(ROOT / "scripts" / "cluster-2node.sh"), "exec", N1, *map(str, cmd)],
                           env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        common.wait_for(f"task {p1} to start", lambda: ("start", p1) in [(ev, i) for _, ev, i in common.journal(out)]
                        or job.poll() is not None, 180)
        assert job.poll() is None, job.communicate()[0]
        claim, holder = claim_holder(out, p1)
        assert holder and holder[0] == N2, holder
        dense_file = out / "dense" / f"{dense}.h5"
        dense_stamp = dense_file.stat().st_mtime_ns
        # The node is lost: every process in its namespace (the rank, Open MPI's daemon) dies.
        victims = subprocess.run(["ip", "netns", "pids", N2], capture_output=True, text=True).stdout.split()
        assert victims
        t_kill = time.monotonic()
        for pid in victims:
            subprocess.run(["kill", "-KILL", pid])
        log = job.communicate(timeout=timeout_s + 30)[0]
        t_end = time.monotonic() - t_kill
    finally:
        go.touch()
        if job.poll() is None:
            job.kill()
    print(f"job ended {t_end:.1f} s after the node was lost; its output:\n{log}")
    assert job.returncode != 0, log
    assert t_end <= timeout_s, t_end
    # Open MPI 4.1 reports a daemon lost after start as one that failed to start, without its
    # host; the job's log says where each rank ran.
    assert "ORTE" in log and f"dist: hosts: {N2} (rank 0), {N1} (rank 1)" in log, log
    # At once: the claim's holder lives on another host, so only its heartbeat can tell it is dead,
    # and that is still fresh: the relaunch leaves p1 alone (and runs p2).
    assert claim.exists()
    age = time.time() - claim.stat().st_mtime
    assert age < heartbeat_s - 3, age
    r = script_exec(N1, common.binary(), "run", str(cfg), *sum((["--set", s] for s in sets), []), env=run_env())
    age_after = time.time() - claim.stat().st_mtime
    assert r.returncode == 0, r.stdout + r.stderr
    assert age_after < heartbeat_s, f"the relaunch took too long to prove anything ({age_after:.1f} s)"
    assert "1 still held by other launchers" in r.stdout + r.stderr, r.stdout + r.stderr
    j = common.journal(out)
    assert [e for _, e, i in j if i == p1] == ["start"], j
    assert claim_holder(out, p1)[1][0] == N2
    p2_stamp = (out / "runs" / f"{p2}.h5").stat().st_mtime_ns
    # After the heartbeat timeout: taken over and finished.
    time.sleep(max(0.0, heartbeat_s + 1 - (time.time() - claim.stat().st_mtime)))
    r = script_exec(N1, common.binary(), "run", str(cfg), *sum((["--set", s] for s in sets), []), env=run_env())
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(rf"claim of {p1} held by g0 \(pid \d+ on {N2}\) is stale; taking it over", r.stderr), r.stderr
    j = common.check_results(out, ids)
    starts = collections.Counter(i for _, e, i in j if e == "start")
    assert starts == {dense: 1, p1: 2, p2: 1}, j
    assert dense_file.stat().st_mtime_ns == dense_stamp
    assert (out / "runs" / f"{p2}.h5").stat().st_mtime_ns == p2_stamp


# --- Slurm across the two nodes ---------------------------------------------------------------

def submit_on_n1(slurm_env, *args, timeout=240, **extra):
    """slurm/submit.sh with slurm/site.local.env, run on passlab-n1 (where slurmctld answers)."""
    env = dict(slurm_env, PASSLAB_SITE=str(common.SITE), PASSLAB_BIN=common.binary(), PASSLAB_LOG="info",
               PASSLAB_TEST_HOLD_TASK="")
    env.update({k: str(v) for k, v in extra.items()})
    return script_exec(N1, "bash", common.SUBMIT, "--parsable", *args, timeout=timeout, env=env)


def job_records(slurm_env, job):
    r = script_exec(N1, "scontrol", "show", "job", "-o", job, timeout=30, env=slurm_env)
    return [dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", line)) for line in r.stdout.splitlines()]


def test_slurm_multinode_template_spans_both_nodes(cluster_slurm, store, tmp_path):
    cfg, out, order = common.make_sweep(tmp_path, store, ["pass", "l1_global"], [0])
    r = submit_on_n1(cluster_slurm, "--wait", "--nodes=2", "--ntasks-per-node=1", f"--output={tmp_path}/%x-%j.out",
                     common.SUBMIT.parent / "multinode.sbatch", cfg, PASSLAB_RANKS_PER_RUN=2)
    log = common.log_of(tmp_path)
    assert r.returncode == 0, f"sbatch --wait: {r.returncode}\n{r.stdout}\n{r.stderr}\n{log}"
    rec = job_records(cluster_slurm, r.stdout.strip().split(";")[0])
    assert rec and rec[0].get("JobState") == "COMPLETED" and rec[0].get("ExitCode") == "0:0", rec
    assert rec[0].get("NodeList") == f"{N1},{N2}" or rec[0].get("NodeList") == "passlab-n[1-2]", rec
    # One rank per node under srun's PMIx, one run group spanning both.
    assert "2 ranks via srun (1 per node), 1 run group(s) of 2" in log, log
    assert f"dist: hosts: {N1} (rank 0), {N2} (rank 1)" in log, log
    assert "passlab: step exited with 0" in log, log
    common.check_results(out, [i for _, i in order])


def test_slurm_array_elements_on_both_nodes(cluster_slurm, store, tmp_path):
    cfg, out, order = common.make_sweep(tmp_path, store, ["l1_global", "random_uniform"], [0, 1])
    dense = [i for k, i in order if k == "dense"]
    hold = f"{dense[0]}={out}/dense/{dense[1]}.h5,{order[-1][1]}={out}/sweep.h5"
    # --exclusive: one element per node, so the two launchers sharing the results live on two hosts.
    r = submit_on_n1(cluster_slurm, "--wait", "--array=0-1", "--exclusive", "--ntasks-per-node=1",
                     f"--output={tmp_path}/%x-%A_%a.out", common.SUBMIT.parent / "array.sbatch", cfg,
                     PASSLAB_TEST_HOLD_TASK=hold)
    log = common.log_of(tmp_path)
    assert r.returncode == 0, f"sbatch --wait: {r.returncode}\n{r.stdout}\n{r.stderr}\n{log}"
    recs = job_records(cluster_slurm, r.stdout.strip().split(";")[0])
    assert sorted(x.get("ArrayTaskId") for x in recs) == ["0", "1"], recs
    assert all(x.get("JobState") == "COMPLETED" and x.get("ExitCode") == "0:0" for x in recs), recs
    assert sorted(x.get("NodeList") for x in recs) == [N1, N2], recs
    j = common.check_results(out, [i for _, i in order])
    starts = collections.Counter(i for _, e, i in j if e == "start")
    assert all(n == 1 for n in starts.values()) and len(starts) == 6, starts
    assert {h.split()[0] for h, e, _ in j if e == "end"} == {N1, N2}, j


def test_slurm_node_lost_mid_task(cluster_slurm, cluster, store, tmp_path):
    """The Slurm side of a lost node: every process in passlab-n2's namespace (its slurmd, the
    step daemon, the rank) killed while the run group works; the step ends after the collective
    timeout with the survivor naming the lost rank and host; after the node is back a relaunch
    completes the sweep."""
    cfg, out, order = common.make_sweep(tmp_path, store, ["l1_global", "random_uniform"], [0])
    dense, p1, p2 = [i for _, i in order]
    go = tmp_path / "go"
    # Shorter than the cluster's SlurmdTimeout (30 s): passlab's watchdog ends the step before
    # Slurm declares the node down.
    timeout_s = 15
    r = submit_on_n1(cluster_slurm, "--nodes=2", "--ntasks-per-node=1", f"--output={tmp_path}/%x-%j.out",
                     common.SUBMIT.parent / "multinode.sbatch", cfg, "--set", f"dist.timeout_s={timeout_s}",
                     PASSLAB_RANKS_PER_RUN=2, PASSLAB_NO_REQUEUE=1, PASSLAB_TEST_HOLD_TASK=f"{p1}={go}")
    assert r.returncode == 0, r.stdout + r.stderr
    job = r.stdout.strip().split(";")[0]
    try:
        common.wait_for(f"task {p1} to start", lambda: ("start", p1) in [(e, i) for _, e, i in common.journal(out)], 120)
        dense_stamp = (out / "dense" / f"{dense}.h5").stat().st_mtime_ns
        victims = subprocess.run(["ip", "netns", "pids", N2], capture_output=True, text=True).stdout.split()
        t_kill = time.monotonic()
        for pid in victims:
            subprocess.run(["kill", "-KILL", pid])
        go.touch()  # the survivor goes on into the task's collectives with its peer gone

        # The survivor gives up after the collective timeout (its output is flushed at once)...
        common.wait_for("the survivor to give up", lambda: "did not complete within" in common.log_of(tmp_path),
                        timeout_s + 30, poll=0.2)
        t_abort = time.monotonic() - t_kill
        # ...then srun ends the step: after its wait for the lost step daemon (12 s), or earlier when
        # slurmctld declares the node down (SlurmdTimeout 30 s). Slurm requeues a job that lost a
        # node (the template asks --requeue): the step, not the job, ends here.
        common.wait_for("the step to end", lambda: "passlab: step exited with" in common.log_of(tmp_path), 60)
        t_end = time.monotonic() - t_kill
    finally:
        go.touch()
        script_exec(N1, "scancel", job, timeout=30, env=cluster_slurm)
    log = common.log_of(tmp_path)
    print(f"job {job}: the survivor gave up {t_abort:.1f} s and the step ended {t_end:.1f} s after the node was lost; "
          f"its output:\n{log}")
    assert "passlab: step exited with 0" not in log, log
    assert timeout_s <= t_abort <= timeout_s + 5, t_abort
    # The survivor names the rank and host it waited for.
    assert re.search(rf"rank 0/2 on {N1} failed: collective .* did not complete within dist.timeout_s = 15\.0+ s "
                     rf"\(a peer is dead or hung; the other ranks of this rank's run group: rank 1 on {N2}\)", log), log
    # The node comes back (its slurmd again); a relaunch finishes the sweep, the dense model is kept.
    r = subprocess.run(["timeout", "120", "bash", str(ROOT / "scripts" / "cluster-2node.sh"), "start-slurm"],
                       capture_output=True, text=True, env=dict(os.environ, PASSLAB_CLUSTER_DIR=str(cluster)))
    assert r.returncode == 0, r.stdout + r.stderr
    r = submit_on_n1(cluster_slurm, "--wait", "--nodes=2", "--ntasks-per-node=1", f"--output={tmp_path}/%x-%j.out",
                     common.SUBMIT.parent / "multinode.sbatch", cfg, PASSLAB_RANKS_PER_RUN=2)
    log = common.log_of(tmp_path)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n{log}"
    j = common.check_results(out, [dense, p1, p2])
    starts = collections.Counter(i for _, e, i in j if e == "start")
    assert starts == {dense: 1, p1: 2, p2: 1}, j
    assert (out / "dense" / f"{dense}.h5").stat().st_mtime_ns == dense_stamp
