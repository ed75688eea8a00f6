# lib.sh: shell helpers shared by lab.sh, ipsec.sh and the lab benchmarks.
# Source it after defining log(). Every wait is bounded; processes are
# recorded by PID in $LAB_STATE/pids and killed by PID, never by name.

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# wait_for DESCRIPTION TIMEOUT_S COMMAND...: poll every 0.1 s until COMMAND succeeds.
wait_for() {
	local what=$1 timeout=$2; shift 2
	local deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			log "timed out after ${timeout}s waiting for $what"
			return 1
		fi
		sleep 0.1
	done
}

# start_bg NAME NS COMMAND...: start COMMAND in NS in the background, record its PID.
start_bg() {
	local name=$1 ns=$2; shift 2
	mkdir -p "$LAB_STATE/pids" "$LAB_STATE/logs"
	# Close inherited descriptors 3-9 (e.g. a caller's `flock` lock), so that a
	# long-running daemon never holds the caller's lock.
	ip netns exec "$ns" "$@" >"$LAB_STATE/logs/$name.log" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	echo $! >"$LAB_STATE/pids/$name.pid"
}

# running PID: PID exists and has not exited. A process that exited but
# whose parent has not reaped it yet (a zombie, state Z) is gone: lab daemons
# are reparented to PID 1, which on some machines reaps only every second or
# two, and waiting for that cost about 2 s per daemon at every lab teardown.
running() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "${st%% *}" != Z ]
}

# kill_pidfile FILE: SIGTERM the PID in FILE, SIGKILL after 5 s, remove FILE.
kill_pidfile() {
	local f=$1 pid
	pid=$(cat "$f" 2>/dev/null) || return 0
	if running "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
		running "$pid" && kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

# The DX cross-connect (lab.sh builds it): lab-dx bridges dx-cgw (the veth to
# lab-cgw's dx0) and dx-aws (to lab-aws's dx0); chain `bridge lab_dx cut`
# sees every frame crossing it, in both directions.

# dx_cut: silently drop every frame crossing DX, both directions at once (one
# rule, one transaction); both ends keep carrier, so only BFD can tell.
dx_cut() { in_ns lab-dx nft add rule bridge lab_dx cut drop; }

# dx_restore: remove every rule from the cut chain (dx_cut's and any other).
dx_restore() { in_ns lab-dx nft flush chain bridge lab_dx cut; }

# dx_link cgw|aws down|up: set lab-dx's end of the veth toward lab-cgw or
# lab-aws down or up. Only that end's peer loses carrier: with `aws down`,
# cgwd's dx0 stays up and the loss shows only in BFD.
dx_link() {
	case $1/$2 in
	cgw/down | cgw/up | aws/down | aws/up) in_ns lab-dx ip link set "dx-$1" "$2" ;;
	*) echo "dx_link: want cgw|aws down|up, got '$1' '$2'" >&2; return 2 ;;
	esac
}

# take_lab_lock SCRIPT: hold /run/cgwd-lab.lock on descriptor 9 for the rest
# of the calling script (for scripts run outside `flock`); waits at most 10 minutes.
take_lab_lock() {
	exec 9>/run/cgwd-lab.lock
	if ! flock -w 600 9; then
		echo "$1: /run/cgwd-lab.lock still held after 10 minutes (run the script itself, not under flock)" >&2
		exit 1
	fi
}
