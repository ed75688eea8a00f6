#!/usr/bin/env bash
# bench-routes.sh: the route-scale benchmark of issue 3. For each N in $SIZES,
# BIRD in lab-aws announces N extra /24s over the DX session (LAB_PREFIXES=N),
# and two customer gateways take them in turn, each in a fresh lab:
#   cgwd   lab.sh start-cgwd; routes counted: proto 200 in lab-cgw's main table
#   BIRD   BIRD 2 in lab-cgw with bird-cgw.conf (DX session only, kernel
#          protocol into the main table); routes counted: proto bird
# Measured: the time from the DX session going Established (lab-aws BIRD's
# log line "aws_dx: State changed to up", ms resolution, the same observer for
# both) until all N+2 routes (N + 10.200.0.0/16 + 10.201.0.0/16) are in the
# kernel, polled every $POLL s; and the daemon's VmRSS at that moment (and
# its peak so far, VmHWM).
# Prints one table. Run as root holding the lab lock:
#   flock -o /run/cgwd-lab.lock test/netns/bench-routes.sh
#   SIZES="1000 10000" flock -o /run/cgwd-lab.lock test/netns/bench-routes.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB="$HERE/lab.sh"
export LAB_STATE=${LAB_STATE:-/run/cgwd-lab}
export BIN=${BIN:-$ROOT/bin}
SIZES=${SIZES:-1000 10000 100000}
POLL=${POLL:-0.02}       # seconds between route counts
TIMEOUT=${TIMEOUT:-120}  # seconds, per wait

log() { printf 'bench-routes: %s\n' "$*" >&2; }
. "$HERE/lib.sh"
cleanup() { "$LAB" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

now_ms() { date +%s%3N; }

# count_routes PROTO: IPv4 routes of PROTO in lab-cgw's main table.
# Unicast only: cgwd's fail-closed routes (unreachable) carry no traffic.
count_routes() { in_ns lab-cgw ip -4 -o route show table main proto "$1" type unicast | wc -l; }

# rss_kib PID: "VmRSS VmHWM" (now and peak resident set) in KiB.
rss_kib() { awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {print r, h}' "/proc/$1/status"; }

# scale_loaded N: lab-aws's BIRD has all N scale routes in its table.
scale_loaded() {
	local n
	n=$(birdc -s "$LAB_STATE/bird-aws.ctl" show protocols all scale |
		awk '/Routes:/ {print $2; exit}')
	[[ ${n:-0} -ge $1 ]]
}

# established_ms: epoch ms of lab-aws BIRD's first "aws_dx: State changed to up".
established_ms() {
	local line
	line=$(grep -m1 ' aws_dx: State changed to up' "$LAB_STATE/logs/bird-aws.log") || return 1
	date -d "${line:0:23}" +%s%3N # "2026-11-25 13:55:13.123 <TRACE> aws_dx: ..."
}

# wait_routes PROTO WANT PID: poll until WANT routes of PROTO are in the
# kernel; print "DONE_MS RSS_KIB PEAK_KIB" (PID's RSS right then, and its peak).
wait_routes() {
	local proto=$1 want=$2 pid=$3 n=0 i max t
	max=$(awk -v t="$TIMEOUT" -v p="$POLL" 'BEGIN { print int(t / p) + 1 }')
	for ((i = 0; i < max; i++)); do
		n=$(count_routes "$proto")
		if ((n >= want)); then
			t=$(now_ms)
			echo "$t $(rss_kib "$pid")"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || { log "pid $pid ($proto) exited with $n of $want routes"; return 1; }
		sleep "$POLL"
	done
	log "timed out: $n of $want routes of proto $proto"
	return 1
}

# lab_up N: a fresh lab whose lab-aws BIRD has loaded N scale prefixes.
lab_up() {
	LAB_PREFIXES=$1 "$LAB" up >&2
	wait_for "lab-aws BIRD to load $1 scale routes" "$TIMEOUT" scale_loaded "$1"
}

# run_cgwd N: prints "SECONDS RSS_MIB PEAK_MIB".
run_cgwd() {
	local n=$1 pid est done_rss
	lab_up "$n"
	"$LAB" start-cgwd >&2
	pid=$(cat "$LAB_STATE/pids/cgwd.pid")
	done_rss=$(wait_routes 200 $((n + 2)) "$pid")
	est=$(established_ms) || { log "no 'aws_dx: State changed to up' in bird-aws.log"; return 1; }
	log "cgwd N=$n: status $("$BIN/cgwd" status -s "$LAB_STATE/cgwd.sock" --json |
		jq -c '[.bgp[] | {name, up, received, installed}]' 2>/dev/null || echo '?')"
	report "$est" $done_rss
}

# run_bird N: prints "SECONDS RSS_MIB PEAK_MIB".
run_bird() {
	local n=$1 pid est done_rss
	lab_up "$n"
	start_bg bird-cgw lab-cgw bird -f -c "$HERE/bird-cgw.conf" -s "$LAB_STATE/bird-cgw.ctl" -P "$LAB_STATE/bird-cgw.pidfile"
	pid=$(cat "$LAB_STATE/pids/bird-cgw.pid") # lab.sh down kills it by this PID
	done_rss=$(wait_routes bird $((n + 2)) "$pid")
	est=$(established_ms) || { log "no 'aws_dx: State changed to up' in bird-aws.log"; return 1; }
	report "$est" $done_rss
}

# report EST_MS DONE_MS RSS_KIB PEAK_KIB: prints "SECONDS RSS_MIB PEAK_MIB".
report() {
	awk -v e="$1" -v d="$2" -v r="$3" -v h="$4" 'BEGIN { printf "%.3f %.1f %.1f\n", (d - e) / 1000, r / 1024, h / 1024 }'
}

for b in cgwd wireguard-go; do
	[[ -x $BIN/$b ]] || { log "$BIN/$b missing: run make build"; exit 1; }
done

declare -A CGWD BIRD
for n in $SIZES; do
	[[ $n =~ ^[0-9]+$ ]] || { log "SIZES: $n is not a number"; exit 2; }
	CGWD[$n]=$(run_cgwd "$n")
	log "cgwd N=$n: seconds, RSS MiB, peak RSS MiB: ${CGWD[$n]}"
	BIRD[$n]=$(run_bird "$n")
	log "BIRD N=$n: seconds, RSS MiB, peak RSS MiB: ${BIRD[$n]}"
done
"$LAB" down >&2

echo
echo "== route scale: DX Established -> all N+2 routes in lab-cgw's kernel (poll ${POLL}s), one run, $(date -u '+%F %H:%M UTC')"
printf '%8s %10s %10s %10s %14s %14s %16s\n' N "cgwd s" "BIRD s" cgwd/BIRD "cgwd RSS MiB" "BIRD RSS MiB" "cgwd peak MiB"
for n in $SIZES; do
	read -r cs cr ch <<<"${CGWD[$n]}"
	read -r bs br _ <<<"${BIRD[$n]}"
	awk -v n="$n" -v cs="$cs" -v bs="$bs" -v cr="$cr" -v br="$br" -v ch="$ch" 'BEGIN {
		ratio = bs > 0 ? sprintf("%.2fx", cs / bs) : "-"
		printf "%8d %10.3f %10.3f %10s %14.1f %14.1f %16.1f\n", n, cs, bs, ratio, cr, br, ch }'
done
echo "targets (issue 3): 100k in under 3 s, under 2x BIRD, cgwd RSS under 300 MiB"
