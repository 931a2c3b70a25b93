#!/usr/bin/env bash
# Run the example workflow on a real single-node SLURM and check the tables are byte-identical to a
# local run. Needs root, Debian's slurm-wlm and munge (installed here when missing and apt-get works),
# and the SLURM extra in the Python that runs it (pip install 'zincassay[slurm]').
#
#   bash tests/cluster/run_slurm.sh [PYTHON]
#
# The daemons are started directly (no systemd) and stopped by their PIDs at the end, pass or fail.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${1:-${REPO}/.venv/bin/python}"
SNAKEMAKE="$(dirname "$PY")/snakemake"
[ "$(id -u)" = 0 ] || { echo "run_slurm.sh: needs root (it starts munged, slurmctld and slurmd)" >&2; exit 2; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
WORK="$(mktemp -d /tmp/zincassay-slurm.XXXXXX)"
# The SLURM executor plugin (zincassay[slurm]) goes into a folder of its own on PYTHONPATH for this
# run only: installed next to a SLURM client with no controller it slows every other snakemake call.
if ! "$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
  "$PY" -m pip install -q --no-deps --target "$WORK/plugins" -c "$REPO/requirements.lock" \
    snakemake-executor-plugin-slurm snakemake-executor-plugin-slurm-jobstep
  export PYTHONPATH="$WORK/plugins${PYTHONPATH:+:$PYTHONPATH}"
fi
STATE="$WORK/slurm"
mkdir -p "$STATE"/{spool,state,log} /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
PIDS=()  # of the daemons we started, read from their pid files right after starting them
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 20); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  if [ -e "$STATE/slurm.conf.orig" ]; then cp -p "$STATE/slurm.conf.orig" /etc/slurm/slurm.conf;
  else rm -f /etc/slurm/slurm.conf; fi
  if [ "$status" -ne 0 ]; then
    echo "---- slurmctld log"; tail -n 30 "$STATE/log/slurmctld.log" 2>/dev/null || true
    echo "---- slurmd log"; tail -n 30 "$STATE/log/slurmd.log" 2>/dev/null || true
  fi
  echo "daemons stopped: ${PIDS[*]} (exit $status)"
  [ "$status" -eq 0 ] && rm -rf "$WORK"
  return "$status"
}
trap cleanup EXIT

HOST="$(hostname -s)"
# nproc honours OMP_NUM_THREADS (1 under the tests), which would make a one-CPU node running one job at a time
CPUS="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
# jobs run srun, which reads the default location; an existing file is put back at the end
CONF=/etc/slurm/slurm.conf
mkdir -p /etc/slurm
[ -e "$CONF" ] && cp -p "$CONF" "$STATE/slurm.conf.orig"
cat > "$CONF" <<CONF
ClusterName=zincassay-test
SlurmctldHost=${HOST}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
StateSaveLocation=${STATE}/state
SlurmdSpoolDir=${STATE}/spool
SlurmctldPidFile=${STATE}/slurmctld.pid
SlurmdPidFile=${STATE}/slurmd.pid
SlurmctldLogFile=${STATE}/log/slurmctld.log
SlurmdLogFile=${STATE}/log/slurmd.log
MinJobAge=600
NodeName=${HOST} CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$CONF"

[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
chown -R munge:munge /var/log/munge /var/lib/munge
su -s /bin/sh munge -c "/usr/sbin/munged --force"
sleep 1
PIDS+=("$(cat /run/munge/munged.pid)")
/usr/sbin/slurmctld -f "$CONF"
/usr/sbin/slurmd -f "$CONF"
for _ in $(seq 20); do [ -s "$STATE/slurmctld.pid" ] && [ -s "$STATE/slurmd.pid" ] && break; sleep 0.5; done
PIDS+=("$(cat "$STATE/slurmctld.pid")" "$(cat "$STATE/slurmd.pid")")
for _ in $(seq 60); do
  state="$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)"
  [ "$state" = "idle" ] && break
  sleep 1
done
[ "$state" = "idle" ] || { echo "SLURM node did not become idle (state: ${state:-none})" >&2; exit 1; }
echo "SLURM up: $(sinfo -h -o '%P %D %T %C')"

# the example project twice: locally and through SLURM
for mode in local slurm; do
  mkdir -p "$WORK/$mode/config"
  cp -r "$REPO/config/." "$WORK/$mode/config/"
  sed -i 's/bootstrap_replicates: 200/bootstrap_replicates: 20/' "$WORK/$mode/config/config.yaml"
  # donor D1 of every assay, the cytokine standards and blanks, and the whole ELISA plate (its layout
  # names both donors): every rule runs, in two thirds of the jobs
  awk -F'\t' 'NR == 1 || $6 == "D1" || $6 == "" || $2 == "elisa"' "$REPO/config/samples.tsv" \
    > "$WORK/$mode/config/samples.tsv"
  ln -s "$REPO/example_data" "$WORK/$mode/example_data"
done
common=(--snakefile "$REPO/Snakefile")
( cd "$WORK/local" && "$SNAKEMAKE" "${common[@]}" --directory "$WORK/local" --cores 2 --quiet )
( cd "$WORK/slurm" && "$SNAKEMAKE" "${common[@]}" --directory "$WORK/slurm" \
    --profile "$REPO/profiles/slurm" \
    --default-resources slurm_partition=debug runtime=10 mem_mb=1000 \
    --slurm-no-account --slurm-status-command squeue --slurm-init-seconds-before-status-checks 1 \
    --latency-wait 5 )  # the profile's jobs: 100, so SLURM keeps every CPU busy
n=0
while IFS= read -r f; do
  cmp "$WORK/local/$f" "$WORK/slurm/$f"
  n=$((n + 1))
done < <(cd "$WORK/local" && find results -name '*.tsv' -o -name '*.tsv.gz' | sort)
[ "$n" -gt 10 ] || { echo "only $n tables compared" >&2; exit 1; }
echo "SLURM run: $n tables byte-identical to the local run"
