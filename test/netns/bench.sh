#!/usr/bin/env bash
# bench.sh: lab benchmarks, printed as one table with ratios against baselines
# measured in the same run. Run as root via `make bench` (which holds the lab lock).
#
# Throughput: iperf3 -t $DURATION, $RUNS runs each, median, interleaved so that
# machine noise hits every target alike:
#   veth      bare DX lab-cgw -> lab-aws: two veths and lab-dx's bridge (the ceiling)
#   cgwd-wg   tunnel cgw-t1: cgwd's embedded WireGuard <-> upstream wireguard-go
#   wg-go     the same path with upstream wireguard-go on both sides (baseline)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB="$HERE/lab.sh"
export LAB_STATE=${LAB_STATE:-/run/cgwd-lab}
BIN=${BIN:-$ROOT/bin}
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}

log() { printf 'bench: %s\n' "$*" >&2; }
. "$HERE/lib.sh"
cleanup() { "$LAB" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

"$LAB" up
"$LAB" start-cgwd
"$LAB" wait-tunnels

# Baseline tunnel: upstream wireguard-go on both ends, same underlay as cgw-t1.
start_wg() { # NS NAME ADDR PORT PEER [ENDPOINT]
	local ns=$1 name=$2 addr=$3 port=$4 peer=$5 ep=${6:-}
	start_bg "$name" "$ns" env LOG_LEVEL=error "$BIN/wireguard-go" -f "$name"
	wait_for "$name UAPI socket" 10 test -S "/var/run/wireguard/$name.sock"
	in_ns "$ns" wg set "$name" private-key "$LAB_STATE/keys/$name.key" listen-port "$port" \
		peer "$(cat "$LAB_STATE/keys/$peer.pub")" allowed-ips 0.0.0.0/0 ${ep:+endpoint $ep}
	in_ns "$ns" ip addr add "$addr" dev "$name"
	in_ns "$ns" ip link set "$name" mtu 1420 up
}
start_wg lab-aws bwg-a 169.254.20.1/30 51830 bwg-c
start_wg lab-cgw bwg-c 169.254.20.2/30 51830 bwg-a 203.0.113.10:51830

start_bg iperf3 lab-aws iperf3 -s
iperf3_listening() { in_ns lab-aws ss -ltn | grep -q ':5201 '; }
wait_for "iperf3 to listen in lab-aws" 5 iperf3_listening

declare -A TARGET=([veth]=169.254.255.1 [cgwd-wg]=169.254.10.1 [wg-go]=169.254.20.1)
ORDER=(veth cgwd-wg wg-go)
declare -A RESULTS

iperf() { # prints Gbit/s
	in_ns lab-cgw iperf3 -c "$1" -t "$DURATION" -J |
		jq -r '.end.sum_received.bits_per_second / 1e9'
}

for run in $(seq "$RUNS"); do
	for name in "${ORDER[@]}"; do
		v=$(iperf "${TARGET[$name]}")
		RESULTS[$name]+="$v "
		printf 'run %d %-8s %.3f Gbit/s\n' "$run" "$name" "$v" >&2
	done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cgwd_pid=$(cat "$LAB_STATE/pids/cgwd.pid")
rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$cgwd_pid/status")
wggo_rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$(cat "$LAB_STATE/pids/bwg-c.pid")/status")

veth=$(median "${RESULTS[veth]}")
cgwd=$(median "${RESULTS[cgwd-wg]}")
wggo=$(median "${RESULTS[wg-go]}")

echo
echo "== throughput: iperf3 -t $DURATION, median of $RUNS, one run of bench.sh"
printf '%-44s %10s %12s %12s\n' "path" "Gbit/s" "vs wg-go" "vs veth"
row() { printf '%-44s %10.3f %11.2fx %11.2fx\n' "$1" "$2" "$(bc -l <<<"$2/$wggo")" "$(bc -l <<<"$2/$veth")"; }
row "bare DX: veth, lab-dx bridge, veth (ceiling)" "$veth"
row "cgwd WireGuard <-> upstream wireguard-go" "$cgwd"
row "upstream wireguard-go both ends (baseline)" "$wggo"
echo
printf 'RSS after the runs: cgwd (2 tunnels) %.1f MiB; upstream wireguard-go (1 tunnel) %.1f MiB\n' \
	"$(bc -l <<<"$rss_kib/1024")" "$(bc -l <<<"$wggo_rss_kib/1024")"
