#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for trying and testing the cluster mode of
# scripts/reproduce_all.sh (Debian's slurm-wlm; needs root).
#
#   bash scripts/slurm_cluster.sh up      # install if missing, configure, start, wait until idle
#   bash scripts/slurm_cluster.sh down    # stop the daemons
#
# The node is this machine (its short hostname) with all its CPUs; jobs run as root.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)

install() {
    command -v sbatch >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || { echo "error: installing SLURM needs root" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

configure() {
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
    [ -s /etc/munge/munge.key ] || mungekey --create
    chown munge:munge /etc/munge/munge.key /run/munge
    chmod 400 /etc/munge/munge.key
    cat > "$CONF" <<EOF
ClusterName=local
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
KillWait=30
NodeName=$NODE CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 60); do
        state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
        case "$state" in
            idle*|mixed*|allocated*) echo "SLURM is up: node $NODE $state"; return ;;
            down*|drain*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
        esac
        sleep 1
    done
    echo "error: the node did not become idle; see /var/log/slurm/" >&2
    exit 1
}

stop() {
    pkill -x slurmd || true
    pkill -x slurmctld || true
    pkill -x munged || true
    echo "SLURM is down"
}

case "${1:-}" in
    up) install; configure; start ;;
    down) stop ;;
    *) echo "usage: bash scripts/slurm_cluster.sh up|down" >&2; exit 2 ;;
esac
