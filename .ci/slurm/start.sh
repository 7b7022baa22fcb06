#!/usr/bin/env bash
# start.sh - a real one-node Slurm cluster on this (Debian 12) machine, for testing the
# workflow's Slurm path (issue 13). Run as root; stop with .ci/slurm/stop.sh.
#
#   sudo .ci/slurm/start.sh          # install if missing, configure, start, smoke-test
#   sudo .ci/slurm/stop.sh [--purge] # stop what start.sh started, by recorded PID
#
# 1. apt-get installs Debian's slurmctld, slurmd, slurm-client and munge when missing
#    (--no-install-recommends; a temporary policy-rc.d keeps the packages from starting
#    system-wide daemons).
# 2. Writes its config, munge key, state, spool, log and PID files under $HAIRTRIAL_SLURM_DIR.
#    The one thing outside it is the symlink /etc/slurm/slurm.conf -> $DIR/etc/slurm.conf:
#    the jobstep plugin of Snakemake strips SLURM_CONF before the inner `srun`, so the
#    clients must find the config at Slurm's default path. start.sh refuses to replace a
#    config it did not make; stop.sh removes only the link start.sh made.
# 3. Starts munged (private socket), slurmctld and slurmd (node "localhost", partition
#    "ci", CPUs and memory from `slurmd -C`), each in the foreground mode of the daemon,
#    detached with setsid; each PID goes to $DIR/pids/<daemon>.pid.
# 4. Waits until the node is idle and runs an sbatch + srun smoke job.
#
# No accounting (no slurmdbd/MariaDB): sacct does not work, so Snakemake polls job status
# with squeue (workflow/profiles/slurm sets slurm-status-command: squeue); MinJobAge=300
# keeps finished jobs visible to squeue long enough.
#
# Idempotent: when the recorded daemons run and the node answers, it does nothing.
# Otherwise it stops what is left of an earlier run (by recorded PID) and starts afresh.
# If it fails part-way, it stops the daemons it has started (logs stay in $DIR/log).
#
# Environment:
#   HAIRTRIAL_SLURM_DIR          base directory (/tmp/hairtrial-slurm); absolute, no spaces
#   HAIRTRIAL_SLURM_CTLD_PORT    slurmctld port (6817)
#   HAIRTRIAL_SLURM_SLURMD_PORT  slurmd port (6818)
#   HAIRTRIAL_SLURM_NO_APT=1     never call apt-get (fail when a package is missing)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE=${HAIRTRIAL_SLURM_DIR:-/tmp/hairtrial-slurm}
CTLD_PORT=${HAIRTRIAL_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${HAIRTRIAL_SLURM_SLURMD_PORT:-6818}
PARTITION=ci
NODE=localhost
DAEMONS=(munged slurmctld slurmd)
PKGS=(slurmctld slurmd slurm-client munge)
LINK=/etc/slurm/slurm.conf
CONF=$BASE/etc/slurm.conf
MUNGE_SOCKET=$BASE/munge/run/munge.socket
export SLURM_CONF=$CONF

log() { printf '[slurm-ci %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() {
    log "ERROR: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, daemons, $LINK)"
[[ "$BASE" =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "HAIRTRIAL_SLURM_DIR must be an absolute path without spaces: '$BASE'"
case "${BASE%/}" in
    "" | /tmp | /etc | /usr | /var | /root | /home | /opt | /srv) die "HAIRTRIAL_SLURM_DIR=$BASE is too broad" ;;
esac

T0=$SECONDS

# ------------------------------------------------------------------ helpers
pid_alive() { # pid_alive NAME: the recorded PID runs that daemon (a zombie counts as dead)
    local f="$BASE/pids/$1.pid" p
    [[ -s "$f" ]] || return 1
    p=$(<"$f")
    [[ "$p" =~ ^[0-9]+$ && -r /proc/$p/comm ]] || return 1
    [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == "$1" ]] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$p/status" 2>/dev/null
}
wait_for() { # wait_for SECONDS WHAT CMD...: poll CMD every 0.5 s; fail early if a daemon died
    local end=$((SECONDS + $1)) what=$2 f d
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || die "timed out waiting for $what (logs: $BASE/log)"
        for f in "$BASE"/pids/*.pid; do
            [[ -e "$f" ]] || continue
            d=$(basename "$f" .pid)
            pid_alive "$d" || {
                tail -n 20 "$BASE/log/$d.out" "$BASE/log/$d.log" >&2 2>/dev/null || true
                die "$d exited while waiting for $what"
            }
        done
        sleep 0.5
    done
}
port_free() { # no listener on the port, on any address
    if command -v ss >/dev/null; then
        [[ -z "$(ss -Hltn "sport = :$1")" ]]
    elif (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        return 1
    fi
}
start_daemon() { # start_daemon NAME PIDFILE CMD...: foreground daemon, detached, PID recorded
    local name=$1 pidfile=$2 pid
    shift 2
    setsid "$@" >"$BASE/log/$name.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$BASE/pids/$name.pid"
    # $! is the daemon itself (setsid execs it) unless setsid had to fork, which it does
    # only in a process-group leader: then take the PID from the daemon's own pid file.
    for _ in $(seq 1 20); do
        pid_alive "$name" && break
        if [[ -s "$pidfile" ]] && [[ "$(cat "/proc/$(<"$pidfile")/comm" 2>/dev/null)" == "$name" ]]; then
            cp "$pidfile" "$BASE/pids/$name.pid"
        fi
        sleep 0.25
    done
    pid_alive "$name" || {
        tail -n 20 "$BASE/log/$name.out" "$BASE/log/$name.log" >&2 2>/dev/null || true
        die "$name did not start"
    }
    log "started $name (pid $(<"$BASE/pids/$name.pid"))"
}
link_is_ours() { [[ -L "$LINK" && "$(readlink "$LINK")" == "$CONF" ]]; }
node_state() { timeout 10 sinfo -h -n "$NODE" -o %t 2>/dev/null; }

# ------------------------------------------------------------------ already running?
if [[ -d "$BASE/pids" ]]; then
    up=1
    for d in "${DAEMONS[@]}"; do pid_alive "$d" || up=0; done
    if ((up)) && link_is_ours && [[ "$(node_state)" =~ ^(idle|mix|alloc)$ ]]; then
        log "already running (pids in $BASE/pids); nothing to do"
        exit 0
    fi
    log "stopping what is left of an earlier run"
    HAIRTRIAL_SLURM_DIR="$BASE" "$HERE/stop.sh" || die "could not stop the earlier daemons; see $BASE/log"
fi

# from here on, a failure stops whatever this run has started
READY=0
on_exit() {
    if ((READY == 0)) && [[ -d "$BASE/pids" ]]; then
        log "start failed: stopping the daemons it started (logs kept in $BASE/log)" >&2
        HAIRTRIAL_SLURM_DIR="$BASE" "$HERE/stop.sh" >&2 || true
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ 1. packages
mkdir -p "$BASE/log"
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    [[ "${HAIRTRIAL_SLURM_NO_APT:-0}" == 1 ]] && die "missing packages: ${missing[*]}"
    log "apt-get install ${missing[*]} (log: $BASE/log/apt.log)"
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # keep the packages' postinst scripts from starting system-wide daemons
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt_rc=0
    {
        apt-get -q -o DPkg::Lock::Timeout=300 update &&
            DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
                install --no-install-recommends "${missing[@]}"
    } >"$BASE/log/apt.log" 2>&1 </dev/null || apt_rc=$?
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    ((apt_rc == 0)) || {
        tail -n 20 "$BASE/log/apt.log" >&2
        die "apt-get failed"
    }
    log "installed Slurm $(dpkg-query -W -f='${Version}' slurmctld) in $((SECONDS - T0))s"
fi
T1=$SECONDS

# ------------------------------------------------------------------ 2. config
for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    port_free "$port" || die "port $port is in use (another Slurm?); set HAIRTRIAL_SLURM_*_PORT"
done
if [[ -L "$LINK" && ! -e "$LINK" ]]; then
    log "replacing the dangling link $LINK -> $(readlink "$LINK")"
    rm -f "$LINK"
elif [[ -e "$LINK" ]] && ! link_is_ours; then
    die "$LINK exists and is not this cluster's ($(readlink -f "$LINK")); stop that cluster first"
fi

# a fresh tree: only the folders this script makes (never the whole base directory)
rm -rf "${BASE:?}"/{etc,pids,run,state,spool,munge}
mkdir -p "$BASE"/{etc,log,pids,run,state,spool,munge/key,munge/run}
chmod 755 "$BASE" "$BASE/munge" "$BASE/munge/run" # munged: socket dir world-executable
chmod 700 "$BASE/munge/key"
dd if=/dev/urandom of="$BASE/munge/key/munge.key" bs=1024 count=1 status=none
chmod 400 "$BASE/munge/key/munge.key"

# node geometry from slurmd -C; memory minus 1 GiB headroom for the daemons
read -r CPUS BOARDS SOCKETS CORES THREADS MEM < <(
    slurmd -C | head -n 1 | tr ' ' '\n' | awk -F= '{v[$1] = $2} END {
        print v["CPUs"], v["Boards"], v["SocketsPerBoard"], v["CoresPerSocket"],
              v["ThreadsPerCore"], v["RealMemory"]}'
)
[[ "$CPUS" =~ ^[0-9]+$ && "$MEM" =~ ^[0-9]+$ ]] || die "could not read the node from slurmd -C"
MEM=$((MEM > 2048 ? MEM - 1024 : MEM))

cat >"$CONF" <<EOF
# written by .ci/slurm/start.sh: one node, one partition, no accounting, everything root
ClusterName=hairtrial-ci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# no cgroups: works in containers and VMs without cgroup delegation (limits not enforced)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# finished jobs stay visible to squeue for 5 minutes: Snakemake polls status with squeue
MinJobAge=300
KillWait=5
InactiveLimit=0
Waittime=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS Boards=$BOARDS SocketsPerBoard=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=$MEM State=UNKNOWN
# DefMemPerCPU: a job without --mem would otherwise take (and block) the node's memory
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$((MEM / CPUS))
EOF

if [[ ! -d /etc/slurm ]]; then
    mkdir -p /etc/slurm
    touch "$BASE/made-etc-slurm"
fi
ln -s "$CONF" "$LINK"
echo "$LINK" >"$BASE/made-link" # stop.sh removes the link only when this file says so
log "config $CONF (linked from $LINK): $CPUS CPUs, ${MEM} MB, partition $PARTITION"

# ------------------------------------------------------------------ 3. daemons
start_daemon munged "$BASE/run/munged.pid" \
    munged -F --socket="$MUNGE_SOCKET" --key-file="$BASE/munge/key/munge.key" \
    --pid-file="$BASE/run/munged.pid" --seed-file="$BASE/munge/key/munged.seed" \
    --log-file="$BASE/log/munged.log"
munge_ok() { munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET"; }
wait_for 20 munged munge_ok

start_daemon slurmctld "$BASE/run/slurmctld.pid" slurmctld -D -f "$CONF"
wait_for 60 slurmctld timeout 10 scontrol ping
start_daemon slurmd "$BASE/run/slurmd.pid" slurmd -D -f "$CONF" -N "$NODE"
node_idle() { [[ "$(node_state)" == idle ]]; }
wait_for 60 "node $NODE to be idle" node_idle
T2=$SECONDS

# ------------------------------------------------------------------ 4. smoke job
# polls squeue itself: `sbatch --wait` backs off and takes seconds longer
# shellcheck disable=SC2016  # $SLURM_JOB_ID expands inside the job
job=$(cd "$BASE/log" && sbatch --parsable -p "$PARTITION" -J smoke -o smoke-%j.out \
    --wrap 'srun echo "smoke job $SLURM_JOB_ID on $(hostname)"') || die "sbatch failed"
job_state() { timeout 10 squeue -h -t all -j "$job" -o %T 2>/dev/null; }
job_done() { [[ "$(job_state)" =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$ ]]; }
wait_for 60 "smoke job $job" job_done
[[ "$(job_state)" == COMPLETED ]] || die "smoke job $job ended $(job_state) (logs: $BASE/log)"
grep -q "smoke job $job" "$BASE/log/smoke-$job.out" || die "smoke job $job wrote no output"
READY=1
log "smoke job $job ok (sbatch + srun + squeue)"
log "ready in $((SECONDS - T0))s (packages $((T1 - T0))s, config + daemons $((T2 - T1))s," \
    "smoke job $((SECONDS - T2))s); stop with $HERE/stop.sh"
