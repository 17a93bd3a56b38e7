#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, and `molmag label` run on it through
# dask-jobqueue (cluster.kind: slurm).  Checks that every row was labelled by SLURM batch
# jobs and that the labels equal those of a serial run.
#
#   sudo scripts/slurm_test.sh            # as root (starts munged, slurmctld, slurmd)
#   PYTHON=/path/to/venv/bin/python sudo -E scripts/slurm_test.sh
#
# Debian's slurm-wlm and munge are installed with apt-get when missing.  Everything the
# daemons need (munge key and socket, slurm.conf, state, spool, logs) lives in one temporary
# folder that is removed at the end; slurmctld and slurmd are told the node is 127.0.0.1, the
# Dask scheduler and workers use the loopback interface (lo), and all daemons are stopped on
# exit.  Takes about a minute; prints the `molmag label` output and the checks.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
PYTHON=${PYTHON:-$(command -v python)}
N_FRAMES=${N_FRAMES:-12}
JOBS=${JOBS:-2}

if [ "$(id -u)" -ne 0 ]; then
  echo "error: run as root (it starts munged, slurmctld and slurmd)" >&2
  exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "== installing slurm-wlm and munge (apt-get)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge \
    >/dev/null
fi

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# -- munge: its own key and socket -------------------------------------------------------------
mkdir -p "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$work/munge"
chmod 400 "$work/munge/munge.key"
munged --force --foreground --key-file="$work/munge/munge.key" \
  --socket="$work/munge/munge.socket" --pid-file="$work/munge/munged.pid" \
  --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed" \
  >"$work/munge/munged.stderr" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$work/munge/munge.socket" ] && break; sleep 0.1; done

# -- slurm: one node (this machine, 127.0.0.1), one partition ---------------------------------
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
mkdir -p "$work/state" "$work/spool" "$work/logs" "$work/daemons"
cat >"$work/slurm.conf" <<EOF
ClusterName=molmagtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge/munge.socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/daemons/slurmctld.log
SlurmdLogFile=$work/daemons/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$work/slurm.conf"
slurmctld -D -f "$SLURM_CONF" >"$work/daemons/slurmctld.stderr" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N localhost >"$work/daemons/slurmd.stderr" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 60); do
  state=$(sinfo -h -o %T 2>/dev/null || true)
  [ "$state" = "idle" ] && break
  sleep 1
done
if [ "$state" != "idle" ]; then
  echo "error: the SLURM node did not come up (state '$state')" >&2
  tail -n 20 "$work"/daemons/* >&2 || true
  exit 1
fi
echo "== listening: $(ss -ltnp 2>/dev/null | awk '/slurm|munge/ {print $4}' | sort | tr "\n" " ")"
echo "== SLURM $(sinfo -V | awk '{print $2}'): $(sinfo -h -o '%P %D node(s) %c CPUs %T')"

# -- molmag label on it --------------------------------------------------------------------------
cd "$work"
"$PYTHON" - "$N_FRAMES" <<'EOF'
import sys
import numpy as np
from ase import Atoms
from ase.io import write

v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
frames = []
for seed in range(int(sys.argv[1])):
    pos = np.vstack([[0, 0, 0], 2.28 * v])
    pos += np.random.default_rng(seed).uniform(-0.08, 0.08, pos.shape)
    frames.append(Atoms("CoCl4", positions=pos, info={"charge": -2, "multiplicity": 4}))
write("cocl4.xyz", frames, format="extxyz")
EOF
cat >label.yaml <<EOF
output: slurm.db
sources:
  - file: cocl4.xyz
labels:
  xtb: {properties: [energy, forces]}
  ligand_field: {}
batch_size: 2
cluster:
  kind: slurm
  jobs: $JOBS                   # sbatch jobs, one Dask worker each
  slurm:                        # dask_jobqueue.SLURMCluster keyword arguments
    queue: debug
    cores: 1
    processes: 1
    memory: 1GB
    walltime: "00:15:00"
    interface: lo               # scheduler and workers on 127.0.0.1
    scheduler_options: {dashboard_address: "127.0.0.1:0"}
    log_directory: $work/logs
    local_directory: $work/dask
EOF
echo "== $ molmag label label.yaml   (cluster.kind slurm, $JOBS jobs)"
t0=$(date +%s)
"$PYTHON" -m molmag.cli label label.yaml
t1=$(date +%s)
echo "== molmag label on SLURM: $((t1 - t0)) s"
echo "== the batch jobs' logs:"
ls "$work/logs"
"$PYTHON" -m molmag.cli label label.yaml --serial -o serial.db >/dev/null

"$PYTHON" - "$N_FRAMES" "$work/logs" <<'EOF'
import glob
import sys

import numpy as np

from molmag.io import Dataset

n, logs = int(sys.argv[1]), sys.argv[2]
slurm, serial = Dataset("slurm.db"), Dataset("serial.db")
a = {r.hash: r for r in slurm.select()}
b = {r.hash: r for r in serial.select()}
assert len(slurm) == n and set(a) == set(b), (len(slurm), n)
assert slurm.count("has_energy=True,has_forces=True,has_zfs_tensor=True") == n
for h in a:
    assert abs(a[h].labels["energy"] - b[h].labels["energy"]) < 1e-6
    np.testing.assert_allclose(a[h].labels["zfs_tensor"], b[h].labels["zfs_tensor"], atol=1e-8)
    np.testing.assert_allclose(a[h].labels["forces"], b[h].labels["forces"], atol=1e-6)
outs = glob.glob(f"{logs}/*.err") + glob.glob(f"{logs}/*.out")
ran = [f for f in outs if "Starting Worker" in open(f).read() or "Start worker" in open(f).read()]
assert ran, f"no SLURM job log shows a Dask worker: {outs}"
assert slurm.leases() == {} and not slurm.failures()
d = [float(np.linalg.eigvalsh(r.labels["zfs_tensor"])[np.argmax(np.abs(np.linalg.eigvalsh(r.labels["zfs_tensor"])))]) * 1.5 for r in a.values()]
print(f"== checked: {n} rows, each with energy, forces and zfs_tensor, equal to a serial run "
      f"(|dE| < 1e-6 eV, |dD_ij| < 1e-8 cm-1); {len(ran)} SLURM job(s) ran Dask workers; "
      f"D from {min(d):.1f} to {max(d):.1f} cm-1")
EOF
echo "== SLURM test passed"
