#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on this machine, from Debian's
# packages (slurm-wlm, munge), for the tests that launch through srun: its
# own munge key and socket, slurmctld and slurmd on free ports, every file
# under DIR. The node is this host with its cores; one partition.
#   tests/slurm/slurm-cluster.sh start DIR   prints SLURM_CONF=DIR/slurm.conf once it answers
#   tests/slurm/slurm-cluster.sh stop DIR
# Needs root (slurmd starts jobs as their users). Exits 77 when it cannot
# run here (no Slurm, not root), so that CTest reports a skip.
set -euo pipefail
cmd="${1:-}"; dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

stop() { # SIGTERM, up to 10 s to exit (they remove their pid files as they go), then SIGKILL
    local pids=() p
    for p in slurmd slurmctld munged; do
        [ -f "$dir/$p.pid" ] && pids+=("$(cat "$dir/$p.pid")")
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 20); do
        kill -0 "${pids[@]}" 2>/dev/null || break
        sleep 0.5
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
    rm -f "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munged.pid
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "$0: unknown command $cmd" >&2; exit 2; }

for b in slurmctld slurmd munged srun scontrol; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || { echo "no $b (packaging/install-deps.sh installs slurm-wlm and munge)" >&2; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "slurmd needs root to start jobs" >&2; exit 77; }

mkdir -p "$dir"/{state,spool,log}
chmod 700 "$dir"
stop
# A key of its own: 1 KiB of random bytes, readable by root only.
head -c 1024 /dev/urandom > "$dir/munge.key"
chmod 400 "$dir/munge.key"
/usr/sbin/munged --force --socket="$dir/munge.socket" --key-file="$dir/munge.key" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
cat > "$dir/slurm.conf" <<CONF
# Written by tests/slurm/slurm-cluster.sh: a throwaway cluster, this host only.
ClusterName=partita-test
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF="$dir/slurm.conf"
/usr/sbin/slurmctld -f "$SLURM_CONF" -i
/usr/sbin/slurmd -f "$SLURM_CONF"
for _ in $(seq 1 60); do
    if scontrol ping 2>/dev/null | grep -q UP && sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
        echo "SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.5
done
echo "Slurm did not come up; its logs:" >&2
tail -n 20 "$dir"/log/*.log >&2 || true
stop
exit 1
