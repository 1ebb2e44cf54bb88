#!/bin/sh
# slurm-test-cluster.sh start|stop|status — a single-node Slurm cluster for
# tests and benchmarks, from the Debian packages slurm-wlm and munge (see
# tools/install-deps.sh): munged with a generated key, slurmctld and slurmd
# as root, one node "localhost" with this machine's CPUs and memory, all in
# a temporary directory, listening on 127.0.0.1 on free ports.
#
#   eval "$(tools/slurm-test-cluster.sh start)"   # SLURM_CONF=… for sbatch, squeue, mlx
#   tools/slurm-test-cluster.sh stop
#
# One cluster runs at a time: `start` while one runs prints the export lines
# of the running one and exits 0 (with "reused" on stderr), so a test can
# share a cluster that CI started; `stop` stops the one that runs. The state
# file naming the cluster's directory is $MLX_SLURM_TEST_STATE (default
# /tmp/mlx-slurm-test-cluster). Exit 2 for usage, 1 when the cluster cannot
# start (its logs are printed on stderr).
set -eu

state=${MLX_SLURM_TEST_STATE:-/tmp/mlx-slurm-test-cluster}

usage() {
	echo "usage: $0 start|stop|status" >&2
	exit 2
}

# A cluster whose slurmd died still answers scontrol ping, but its jobs
# pend forever; so both daemons must be alive for it to count as running.
running() { # DIR — true when the cluster in DIR answers and has its node
	[ -f "$1/slurm.conf" ] && [ -f "$1/slurmctld.pid" ] && [ -f "$1/slurmd.pid" ] &&
		kill -0 "$(cat "$1/slurmctld.pid")" 2>/dev/null &&
		kill -0 "$(cat "$1/slurmd.pid")" 2>/dev/null &&
		SLURM_CONF="$1/slurm.conf" scontrol ping >/dev/null 2>&1
}

exports() { # DIR
	echo "export SLURM_CONF='$1/slurm.conf'"
}

free_port() { # a TCP port nobody listens on, away from the ephemeral range's start
	port=$(($$ % 2000 + 21000))
	while ss -Htln "sport = :$port" 2>/dev/null | grep -q .; do
		port=$((port + 1))
	done
	echo "$port"
}

stop_dir() { # DIR
	dir=$1
	for daemon in slurmd slurmctld; do
		if [ -f "$dir/$daemon.pid" ]; then
			pid=$(cat "$dir/$daemon.pid")
			kill "$pid" 2>/dev/null || true
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			kill -9 "$pid" 2>/dev/null || true
		fi
	done
	# Job steps a killed slurmd left behind (slurmstepd) belong to this
	# cluster only when they run under its spool directory's config.
	for pid in $(pgrep -f "slurmstepd" 2>/dev/null || true); do
		if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_CONF=$dir/slurm.conf"; then
			kill -9 "$pid" 2>/dev/null || true
		fi
	done
	if [ -f "$dir/munged.pid" ]; then
		kill "$(cat "$dir/munged.pid")" 2>/dev/null || true
	fi
	rm -rf "$dir"
}

start() {
	exec 9>"$state.lock"
	flock 9
	if [ -f "$state" ] && running "$(cat "$state")"; then
		echo "slurm-test-cluster: reused the cluster in $(cat "$state")" >&2
		exports "$(cat "$state")"
		return 0
	fi
	if [ -f "$state" ]; then
		stop_dir "$(cat "$state")"
		rm -f "$state"
	fi
	for tool in munged slurmctld slurmd sbatch; do
		command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "slurm-test-cluster: $tool is not installed (run tools/install-deps.sh)" >&2
			exit 1
		fi
	done
	dir=$(mktemp -d "${TMPDIR:-/tmp}/mlx-slurm-XXXXXX")
	chmod 700 "$dir"
	mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
	chmod 700 "$dir/munge"
	dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null
	chmod 400 "$dir/munge/munge.key"
	if ! munged --force --socket="$dir/munge/munge.sock" --key-file="$dir/munge/munge.key" \
		--pid-file="$dir/munged.pid" --log-file="$dir/munged.log" \
		--seed-file="$dir/munge/munged.seed" 2>"$dir/munged.err" 9>&-; then
		cat "$dir/munged.err" "$dir/munged.log" >&2 2>/dev/null || true
		rm -rf "$dir"
		exit 1
	fi
	cpus=$(nproc)
	# RealMemory a little under what the kernel reports, as slurmd refuses
	# a node that claims more than it has.
	mem=$(awk '/^MemTotal:/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
	ctld_port=$(free_port)
	d_port=$((ctld_port + 1))
	while ss -Htln "sport = :$d_port" 2>/dev/null | grep -q .; do d_port=$((d_port + 1)); done
	cat >"$dir/slurm.conf" <<EOF
ClusterName=mlxtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=256
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
KillWait=2
OverTimeLimit=0
MinJobAge=300
MaxArraySize=10001
MaxJobCount=100000
InactiveLimit=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
	export SLURM_CONF="$dir/slurm.conf"
	# The daemons must not inherit the lock's descriptor (9): they would
	# hold the lock for as long as they run.
	slurmctld -f "$dir/slurm.conf" -i 2>"$dir/slurmctld.err" 9>&- || true
	slurmd -f "$dir/slurm.conf" -N localhost 2>"$dir/slurmd.err" 9>&- || true
	echo "$dir" >"$state"
	i=0
	until sinfo -h -o '%T' 2>/dev/null | grep -Eq '^idle'; do
		i=$((i + 1))
		if [ $i -gt 300 ]; then
			echo "slurm-test-cluster: the node did not become idle in 30 s; logs follow" >&2
			tail -n 20 "$dir"/*.log "$dir"/*.err >&2 2>/dev/null || true
			stop_dir "$dir"
			rm -f "$state"
			exit 1
		fi
		sleep 0.1
	done
	exports "$dir"
}

stop() {
	exec 9>"$state.lock"
	flock 9
	if [ -f "$state" ]; then
		stop_dir "$(cat "$state")"
		rm -f "$state"
	fi
}

[ $# -eq 1 ] || usage
case $1 in
start) start ;;
stop) stop ;;
status)
	if [ -f "$state" ] && running "$(cat "$state")"; then
		exports "$(cat "$state")"
	else
		echo "slurm-test-cluster: not running" >&2
		exit 1
	fi
	;;
*) usage ;;
esac
