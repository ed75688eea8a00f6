#!/usr/bin/env bash
# bench-ikeflood.sh: an IKE_SA_INIT flood against cgwd as the responder, then
# the same flood against strongSwan as the responder, in the same IPsec lab
# and run. ikeattack (test/netns/ikeattack) sends RATE well-formed INITs a
# second for DURATION seconds from lab-inet, each from a new random SPI,
# spoofing the legitimate peer's address (UDP 500). Two seconds in, tunnel 1
# is torn down and its legitimate initiator connects again through the
# flood. Per responder it prints:
#   answered/s  the INITs the responder answered (a COOKIE request or an
#               INIT response: counted in lab-inet), per second of flood
#   CPU         the responder's user+system time over the flood, in cores
#   RSS         resident memory before and at its peak during the flood
#   re-est.     seconds from the reconnect until tunnel 1 carries a ping again
#   t2 loss     a 100/s ping over tunnel 2 during the flood
# and the ratios cgwd/strongSwan. The legitimate initiator is strongSwan when
# cgwd responds and cgwd when strongSwan responds (the lab has one of each).
# RATES (default "5000 15000") are the flood rates, each run against both.
# Run as root WITHOUT wrapping it in flock: it takes /run/cgwd-lab.lock itself.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export LAB_STATE=${LAB_STATE:-/run/cgwd-lab} TUNNEL=ipsec
BIN=${BIN:-$ROOT/bin}
RATES=${RATES:-5000 15000}
DURATION=${DURATION:-10}
WORK=$(mktemp -d /tmp/cgwd-bench-ikeflood.XXXXXX)
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	"$HERE/lab.sh" down >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf 'bench-ikeflood: %s\n' "$*" >&2; }
. "$HERE/lib.sh"
take_lab_lock bench-ikeflood.sh
(cd "$ROOT" && go build -o "$WORK/ikeattack" ./test/netns/ikeattack)
swan() { "$HERE/ipsec.sh" swanctl "$@" >/dev/null 2>&1; }
cgwd_status() { "$BIN/cgwd" status -s "$LAB_STATE/cgwd.sock" --json; }
t1_spis() { cgwd_status | jq -r '.tunnels[] | select(.name == "cgw-t1") | .ipsec.ike_spis // ""'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime, 1/100 s
rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# peak_rss PID FILE: write PID's peak VmRSS (MiB) to FILE every 0.1 s until killed.
peak_rss() {
	local peak=0 v
	while v=$(awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null); do
		((v > peak)) && peak=$v && echo "$peak" >"$2"
		sleep 0.1
	done
}

# answered SRC DST: the flood's answers (UDP 500 from SRC to DST) lab-inet forwarded.
count_answers() {
	in_ns lab-inet nft add table ip ikeflood
	in_ns lab-inet nft add chain ip ikeflood answers '{ type filter hook forward priority 0; }'
	in_ns lab-inet nft add rule ip ikeflood answers ip saddr "$1" ip daddr "$2" udp sport 500 udp dport 500 counter
}
answers() { in_ns lab-inet nft -j list chain ip ikeflood answers | jq '[.nftables[] | .rule? | select(.) | .expr[] | .counter? | select(.) | .packets] | add'; }

# flood NAME RATE PID SRC DST RECONNECT...: flood DST from SRC (spoofed) at
# RATE while RECONNECT (a command) tears tunnel 1 down and has it connect
# again; prints one row.
flood() {
	local name=$1 rate=$2 pid=$3 src=$4 dst=$5; shift 5
	local before t0 rss0 peakf=$WORK/peak-$name ping_out=$WORK/ping-$name
	"$HERE/lab.sh" wait-tunnels >/dev/null 2>&1
	before=$(t1_spis)
	count_answers "$dst" "$src"
	rss0=$(rss_mib "$pid")
	echo 0 >"$peakf"
	peak_rss "$pid" "$peakf" & local sampler=$!
	PIDS+=("$sampler")
	in_ns lab-cgw ping -q -i 0.01 -W 1 -c $((100 * DURATION)) 169.254.11.1 >"$ping_out" 2>&1 & local pinger=$!
	PIDS+=("$pinger")
	t0=$(ticks "$pid")
	local start=$SECONDS
	in_ns lab-inet "$WORK/ikeattack" -mode init-flood -src "$src:500" -dst "$dst:500" -rate "$rate" \
		-duration "${DURATION}s" -count $((rate * DURATION)) >"$WORK/flood-$name.json" & local flooder=$!
	PIDS+=("$flooder")
	sleep 2
	local rs re=- now
	rs=$(date +%s%N)
	"$@"
	while ((SECONDS - start < DURATION)); do
		now=$(t1_spis)
		if [[ -n $now && $now != "$before" ]] && in_ns lab-cgw ping -c 1 -W 1 169.254.10.1 >/dev/null 2>&1; then
			re=$(printf '%.2f' "$(bc -l <<<"($(date +%s%N) - $rs) / 1000000000")")
			break
		fi
		sleep 0.1
	done
	wait "$flooder"
	local secs cpu
	secs=$(jq .seconds "$WORK/flood-$name.json")
	cpu=$(printf '%.2f' "$(bc -l <<<"($(ticks "$pid") - $t0) / 100 / $secs")")
	kill "$sampler" 2>/dev/null || true
	wait "$pinger" || true
	local sent ans loss
	sent=$(jq .sent "$WORK/flood-$name.json")
	ans=$(answers)
	loss=$(grep -o '[0-9.]*% packet loss' "$ping_out" | cut -d% -f1)
	in_ns lab-inet nft delete table ip ikeflood
	printf '%-12s %6s %8.0f %11.0f %10s %18s %9s %8s%%\n' "$name" "$rate" "$(bc -l <<<"$sent / $secs")" "$(bc -l <<<"$ans / $secs")" \
		"$cpu" "$rss0 -> $(bc -l <<<"scale=1; $(cat "$peakf") / 1024")" "$re" "$loss"
	echo "$name $rate $(bc -l <<<"$ans / $secs") $cpu $(bc -l <<<"$(cat "$peakf") / 1024 - $rss0")" >>"$WORK/rows"
}

# cgwd responds: strongSwan initiates both tunnels, and tunnel 1 again during the flood.
"$HERE/lab.sh" up >/dev/null
CGWD_IPSEC_OPTS="initiate: false" "$HERE/ipsec.sh" cgwd-yaml
"$HERE/lab.sh" start-cgwd
for n in 1 2; do swan "$n" --initiate --child aws --timeout 10; done
"$HERE/lab.sh" wait-tunnels
cgwd_pid=$(cat "$LAB_STATE/pids/cgwd.pid")
charon_pid=$(cat "$LAB_STATE/pids/charon-aws-t1.pid")

echo "== IKE_SA_INIT flood for ${DURATION}s from random SPIs, spoofed from the legitimate peer (UDP 500)"
printf '%-12s %6s %8s %11s %10s %18s %9s %9s\n' responder rate "sent/s" "answered/s" "CPU cores" "RSS MiB (peak)" "re-est. s" "t2 loss"
reconnect_strongswan() { swan 1 --terminate --ike aws --timeout 3; swan 1 --initiate --child aws --timeout 7 || true; }
for rate in $RATES; do flood cgwd "$rate" "$cgwd_pid" 203.0.113.10 198.51.100.2 reconnect_strongswan; done

# strongSwan responds: cgwd initiates (its default), and again once strongSwan drops tunnel 1.
"$HERE/lab.sh" stop-cgwd
"$HERE/ipsec.sh" cgwd-yaml
"$HERE/lab.sh" start-cgwd
"$HERE/lab.sh" wait-tunnels >/dev/null 2>&1
reconnect_cgwd() { swan 1 --terminate --ike aws --timeout 3; }
for rate in $RATES; do flood strongswan "$rate" "$charon_pid" 198.51.100.2 203.0.113.10 reconnect_cgwd; done

ratio() { if [[ $(bc -l <<<"$2 > 0") == 1 ]]; then printf '%.2fx' "$(bc -l <<<"$1 / $2")"; else echo n/a; fi; }
for rate in $RATES; do
	read -r _ _ c_ans c_cpu c_rss < <(grep "^cgwd $rate " "$WORK/rows")
	read -r _ _ s_ans s_cpu s_rss < <(grep "^strongswan $rate " "$WORK/rows")
	echo "cgwd/strongSwan at $rate/s: answered/s $(ratio "$c_ans" "$s_ans"), CPU $(ratio "$c_cpu" "$s_cpu"), RSS growth $(printf '%.1f' "$c_rss") vs $(printf '%.1f' "$s_rss") MiB"
done
echo "(re-est.: '-' means tunnel 1 did not carry a ping again before the flood ended)"
