#!/usr/bin/env bash
# stop.sh - stop the one-node Slurm cluster of .ci/slurm/start.sh and clean up.
#
#   sudo .ci/slurm/stop.sh           # keeps $HAIRTRIAL_SLURM_DIR/{etc,log} for diagnosis
#   sudo .ci/slurm/stop.sh --purge   # removes everything start.sh wrote
#
# 1. Cancels the jobs still queued or running (while slurmctld is up) and waits for them.
# 2. Stops slurmd, slurmctld and munged, each by the PID start.sh recorded in
#    $HAIRTRIAL_SLURM_DIR/pids/, and only while /proc/PID/comm still names that daemon
#    (a recycled PID is left alone). Never kills by name: SIGTERM, then SIGKILL after 20 s.
# 3. Removes /etc/slurm/slurm.conf only if start.sh made that link and it still points
#    here, then the munge key, sockets, PID files, state and spool.
# Safe to call twice, with nothing running, and after start.sh failed half-way.
# Exits 1 only when a recorded daemon could not be stopped.
set -euo pipefail

BASE=${HAIRTRIAL_SLURM_DIR:-/tmp/hairtrial-slurm}
PURGE=0
[[ "${1:-}" == --purge ]] && PURGE=1
LINK=/etc/slurm/slurm.conf
CONF=$BASE/etc/slurm.conf
export SLURM_CONF=$CONF

log() { printf '[slurm-ci %(%H:%M:%S)T] %s\n' -1 "$*"; }

[[ $(id -u) -eq 0 ]] || {
    log "ERROR: must run as root" >&2
    exit 1
}
[[ "$BASE" =~ ^/[A-Za-z0-9._/+-]+$ ]] || {
    log "ERROR: HAIRTRIAL_SLURM_DIR must be an absolute path without spaces: '$BASE'" >&2
    exit 1
}
case "${BASE%/}" in
    "" | /tmp | /etc | /usr | /var | /root | /home | /opt | /srv)
        log "ERROR: HAIRTRIAL_SLURM_DIR=$BASE is too broad" >&2
        exit 1
        ;;
esac
if [[ ! -d "$BASE" ]]; then
    log "$BASE does not exist: nothing to stop"
    exit 0
fi

recorded_pid() { # prints the recorded PID of daemon NAME if it still runs that daemon
    local f="$BASE/pids/$1.pid" p
    [[ -s "$f" ]] || return 1
    p=$(<"$f")
    [[ "$p" =~ ^[0-9]+$ ]] || return 1
    [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == "$1" ]] || return 1
    echo "$p"
}
running() { # a zombie counts as stopped (this sandbox's init reaps orphans late)
    [[ -r "/proc/$1/status" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# ------------------------------------------------------------------ 1. jobs
if recorded_pid slurmctld >/dev/null && [[ -f "$CONF" ]]; then
    mapfile -t jobs < <(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if ((${#jobs[@]})); then
        log "cancelling jobs ${jobs[*]}"
        timeout 10 scancel "${jobs[@]}" 2>/dev/null || true
        for _ in $(seq 1 60); do
            [[ -z "$(timeout 10 squeue -h -t PD,R,CG,S,CF -o %i 2>/dev/null || true)" ]] && break
            sleep 0.5
        done
    fi
fi

# ------------------------------------------------------------------ 2. daemons
rc=0
for d in slurmd slurmctld munged; do
    if ! p=$(recorded_pid "$d"); then
        rm -f "$BASE/pids/$d.pid"
        continue
    fi
    if running "$p"; then
        log "stopping $d (pid $p)"
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 1 100); do
            running "$p" || break
            sleep 0.2
        done
        if running "$p" && [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == "$d" ]]; then
            log "$d (pid $p) ignored SIGTERM: SIGKILL"
            kill -KILL "$p" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    if running "$p" && [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == "$d" ]]; then
        log "WARNING: $d (pid $p) is still running"
        rc=1
    else
        rm -f "$BASE/pids/$d.pid"
    fi
done

# ------------------------------------------------------------------ 3. clean up
if ((rc != 0)); then
    log "left the link, PID files and config in place: run stop.sh again" >&2
    exit "$rc"
fi
if [[ -f "$BASE/made-link" ]]; then
    if [[ -L "$LINK" && "$(readlink "$LINK")" == "$CONF" ]]; then
        rm -f "$LINK"
        log "removed the link $LINK"
    fi
    rm -f "$BASE/made-link"
fi
if [[ -f "$BASE/made-etc-slurm" ]]; then
    rmdir /etc/slurm 2>/dev/null || true # only when empty
    rm -f "$BASE/made-etc-slurm"
fi
rm -rf "${BASE:?}"/{pids,run,state,spool,munge}
if ((PURGE)); then
    rm -rf "${BASE:?}"/{etc,log}
    rmdir "$BASE" 2>/dev/null || true # only when empty: never anything else in it
fi
log "stopped: no daemon of this cluster is running"
