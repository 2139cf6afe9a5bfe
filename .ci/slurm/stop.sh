#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by .ci/slurm/start.sh.
# Kills only the daemons whose pid files start.sh left under $SLURM_TMP
# (slurmd, slurmctld, and munged if start.sh started it). Safe to call twice.
# SLURM_KEEP_TMP=1 keeps $SLURM_TMP (logs, state); otherwise only run/ is cleared.
set -uo pipefail

SLURM_TMP="${SLURM_TMP:-/tmp/softdisplaced-slurm}"
log() { echo "[slurm/stop] $*" >&2; }

stop_pidfile() {  # name pidfile
    local name="$1" pf="$2" pid i
    [[ -s "$pf" ]] || return 0
    pid="$(cat "$pf")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        # guard against a recycled pid: the process must be the daemon we expect
        if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]]; then
            log "pid $pid in $pf is not $name any more; leaving it alone"
        else
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null
            for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            if kill -0 "$pid" 2>/dev/null; then
                log "$name did not stop within 10 s; sending KILL"
                kill -KILL "$pid" 2>/dev/null
            fi
        fi
    fi
    rm -f "$pf"
}

if [[ -f "$SLURM_TMP/etc/slurm.conf" ]] && command -v scancel >/dev/null 2>&1; then
    # Cancel leftover jobs so that slurmd does not leave orphaned job steps behind.
    SLURM_CONF="$SLURM_TMP/etc/slurm.conf" timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
fi
stop_pidfile slurmd    "$SLURM_TMP/run/slurmd.pid"
stop_pidfile slurmctld "$SLURM_TMP/run/slurmctld.pid"
stop_pidfile munged    "$SLURM_TMP/run/munged.pid"
rm -f "$SLURM_TMP/env.sh"
# the /etc/slurm/slurm.conf link made by start.sh (only if it points to our configuration)
if [[ -L /etc/slurm/slurm.conf && "$(readlink /etc/slurm/slurm.conf)" == "$SLURM_TMP/etc/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf
fi
log "stopped (logs kept under $SLURM_TMP/log)"
exit 0
