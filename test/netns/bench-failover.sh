#!/usr/bin/env bash
# bench-failover.sh: the DX-cut benchmark of issue 4, cgwd against BIRD as the
# customer gateway, with N prefixes installed. Run as root under the lab lock:
#   flock -o /run/cgwd-lab.lock test/netns/bench-failover.sh
#
# For every N in $SIZES and for each customer gateway (cgwd, then BIRD 2 with
# BFD + BGP + its kernel protocol), on a fresh lab:
#   - BIRD in lab-aws announces N scale /24s (20.0.0.0/24 up) and the VPC's
#     10.200.0.0/16 over DX *and* both tunnels, so every one of them can fail
#     over (lab.sh announces the scale prefixes over DX only; this script edits
#     the generated $LAB_STATE/bird-aws.conf);
#   - BFD on DX runs at $BFD_MS ms x 3 on both sides (tunnels stay 300 ms x 3);
#   - lab-vpc answers on the first, middle and last scale prefix (a /32 on its
#     lo, routed there by lab-aws) and on 10.200.0.10;
#   - udpgap in lab-onprem sends $PPS packets/s to each of these four
#     destinations; $CUT_AT s in, DX is cut in lab-dx, the provider between
#     the two ends (lab.sh): by default (CUT=drop) one nftables rule on its
#     bridge silently drops every frame, both directions in the same instant;
#     CUT=far-link takes carrier from lab-aws's dx0 only, CUT=near-link from
#     cgwd's. A receiver per destination in lab-vpc reports the packets lost
#     and the longest gap between arrivals. At a steady rate the loss is the
#     outage (at 1,000/s, one packet a millisecond) even when a receiver was
#     slow to read; the table shows both, the worst of the four destinations.
# Bounded waits everywhere; processes killed by PID; the lab comes down on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB="$HERE/lab.sh"
export LAB_STATE=${LAB_STATE:-/run/cgwd-lab}
BIN=${BIN:-$ROOT/bin}
SIZES=${SIZES:-100 10000 100000}
BFD_MS=${BFD_MS:-50}
PPS=${PPS:-1000}
DURATION=${DURATION:-10} # seconds of stream
CUT_AT=${CUT_AT:-2}      # seconds into the stream
CUT=${CUT:-drop}         # drop, far-link or near-link (see do_cut)
KEEP_LOGS=${KEEP_LOGS:-} # a directory: each run's lab logs are copied there before the lab comes down
PORT=9000
DETECT_MS=$((BFD_MS * 3))

log() { printf 'bench-failover: %s\n' "$*" >&2; }
. "$HERE/lib.sh"
RUNNING=none # who-N of the run in progress, for keep_logs on a failure
cleanup() {
	if [[ -n $KEEP_LOGS && -d $LAB_STATE/logs ]]; then keep_logs "failed-$RUNNING" ""; fi
	"$LAB" down >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
WORK=$(mktemp -d)
trap cleanup EXIT

# The stream: test/netns/udpgap, built here. One sender in lab-onprem sends
# every sequence number to each destination at $PPS; one receiver per
# destination in lab-vpc. Both run as SCHED_FIFO when chrt can, so that on a
# busy machine neither is starved: the sender's max_late_ms says how far it
# fell behind its schedule at worst.
(cd "$ROOT" && go build -o "$WORK/udpgap" ./test/netns/udpgap)
RT=()
if chrt -f 10 true 2>/dev/null; then RT=(chrt -f 10); fi

# scale_addr I: the .10 host in the I-th scale /24 (lab.sh's prefix_list numbering).
scale_addr() { echo "$((20 + $1 / 65536)).$(($1 / 256 % 256)).$(($1 % 256)).10"; }

# prepare N: lab up with N scale prefixes announced over every session, BFD on DX at $BFD_MS ms.
prepare() {
	local n=$1 i a
	LAB_PREFIXES=$n "$LAB" up
	local bc="$LAB_STATE/bird-aws.conf"
	sed -i -e "/interface \"dx0\"/s/300 ms/$BFD_MS ms/g" \
		-e 's/export where proto = "vpc" || proto = "extra"/& || proto = "scale"/' "$bc"
	[[ $(grep -c 'proto = "scale"' "$bc") == 3 && $(grep -c "interval $BFD_MS ms" "$bc") == 1 ]] ||
		{ log "could not rewrite $bc"; return 1; }
	birdc -s "$LAB_STATE/bird-aws.ctl" configure >/dev/null
	DESTS=(10.200.0.10)
	for i in 0 $((n / 2)) $((n - 1)); do
		a=$(scale_addr "$i")
		DESTS+=("$a")
		in_ns lab-aws ip route add "${a%.10}.0/24" via 10.200.0.10
		in_ns lab-vpc ip addr add "$a/32" dev lo
	done
}

# cgwd variant of the lab config: DX BFD at $BFD_MS ms, tunnels accept N prefixes.
cgwd_config() {
	local c="$LAB_STATE/cgwd.yaml"
	sed -i -e "/AWS DX/s/interval: 300ms/interval: ${BFD_MS}ms/" \
		-e 's/^\(          \)max_prefixes_restart: 3s/&\n\1max_prefixes: 200000/' \
		-e 's/^\(        \)bfd: {enabled: true, interval: 300ms, multiplier: 3}$/\1bgp: {max_prefixes: 200000}\n&/' "$c"
	[[ $(grep -c 'max_prefixes: 200000' "$c") == 3 && $(grep -c "interval: ${BFD_MS}ms" "$c") == 1 ]] ||
		{ log "could not rewrite $c"; cat "$c" >&2; return 1; }
}

# start_bird_cgw: upstream wireguard-go tunnels and BIRD in lab-cgw, in place of cgwd.
start_bird_cgw() {
	local t port remote
	for t in 1 2; do
		port=$((51819 + t)) remote=203.0.113.$((t * 10))
		start_bg "cgw-t$t" lab-cgw env LOG_LEVEL=error "$BIN/wireguard-go" -f "cgw-t$t"
		wait_for "cgw-t$t UAPI socket" 10 test -S "/var/run/wireguard/cgw-t$t.sock"
		in_ns lab-cgw wg set "cgw-t$t" private-key "$LAB_STATE/keys/cgw-t$t.key" listen-port "$port" \
			peer "$(cat "$LAB_STATE/keys/aws-t$t.pub")" allowed-ips 0.0.0.0/0 endpoint "$remote:$port" \
			persistent-keepalive 5
		in_ns lab-cgw ip addr add "169.254.$((9 + t)).2/30" dev "cgw-t$t"
		in_ns lab-cgw ip link set "cgw-t$t" mtu 1420 up
	done
	sed -e "s/@DX_MS@/$BFD_MS/g" "$HERE/bird-cgw-bfd.conf" >"$LAB_STATE/bird-cgw.conf"
	start_bg bird-cgw lab-cgw bird -f -c "$LAB_STATE/bird-cgw.conf" -s "$LAB_STATE/bird-cgw.ctl" -P "$LAB_STATE/bird-cgw.pidfile"
	wait_for "BIRD in lab-cgw" 10 birdc -s "$LAB_STATE/bird-cgw.ctl" show status
}

route_dev() { in_ns lab-cgw ip -4 route get "$1" | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}'; }
all_via() { # all_via DEV: every destination routed via DEV in lab-cgw
	local d
	for d in "${DESTS[@]}"; do [[ $(route_dev "$d") == "$1" ]] || return 1; done
}
routes_in() { # routes_in PROTO MIN: lab-cgw has at least MIN routes of PROTO
	(($(in_ns lab-cgw ip -4 route show proto "$1" | wc -l) >= $2))
}
bfd_dx_up() { # the AWS side sees DX BFD Up
	birdc -s "$LAB_STATE/bird-aws.ctl" show bfd sessions | grep -q '169.254.255.2 .*Up'
}

# do_cut: what $CUT does to DX (lib.sh's helpers, all in lab-dx).
do_cut() {
	case $CUT in
	drop) dx_cut ;;                  # one rule: every frame, both directions, both ends keep carrier
	far-link) dx_link aws down ;;    # lab-aws's dx0 loses carrier; cgwd's dx0 keeps it (BFD must see it)
	near-link) dx_link cgw down ;;   # cgwd's dx0 loses carrier
	*) log "CUT=$CUT: want drop, far-link or near-link"; return 2 ;;
	esac
}

# receiving I: receiver I says it listens.
receiving() { grep -q 'listening on' "$WORK/rx$1.err"; }

# stream_cut WHO N: stream to every destination, cut DX $CUT_AT s in; appends one
# JSON line to results.jsonl (per destination: longest gap, packets lost).
stream_cut() {
	local who=$1 n=$2 i rxpids=() txpid moved="-" to=()
	for i in "${!DESTS[@]}"; do
		in_ns lab-vpc "${RT[@]}" "$WORK/udpgap" recv -listen "${DESTS[i]}:$PORT" -duration $((DURATION + 5))s -json \
			>"$WORK/rx$i.json" 2>"$WORK/rx$i.err" &
		rxpids+=($!)
		to+=("${DESTS[i]}:$PORT")
	done
	for i in "${!DESTS[@]}"; do wait_for "receiver $i" 10 receiving "$i"; done
	in_ns lab-onprem "${RT[@]}" "$WORK/udpgap" send -to "$(IFS=,; echo "${to[*]}")" -pps "$PPS" -duration "${DURATION}s" -json \
		>"$WORK/tx.json" &
	txpid=$!
	sleep "$CUT_AT" # the stream's schedule: the cut comes $CUT_AT s in
	local t0=$EPOCHREALTIME
	do_cut
	# How long until no route is left on dx0 (polled; shows the per-route rewrite).
	local deadline=$((SECONDS + DURATION + 20))
	while ((SECONDS < deadline)); do
		if (($(in_ns lab-cgw ip -4 route show dev dx0 | grep -vc 'proto kernel') == 0)); then
			moved=$(bc <<<"($EPOCHREALTIME - $t0) * 1000 / 1")
			break
		fi
		sleep 0.05
	done
	wait "$txpid" || { log "sender failed"; return 1; }
	for i in "${!rxpids[@]}"; do wait "${rxpids[i]}" || { log "receiver $i failed: $(cat "$WORK/rx$i.err")"; return 1; }; done
	local rx=()
	for i in "${!DESTS[@]}"; do rx+=("$WORK/rx$i.json"); done
	jq -s -c --arg who "$who" --argjson n "$n" --arg moved "$moved" --slurpfile tx "$WORK/tx.json" '{
		who: $who, n: $n, moved_ms: $moved, sent: $tx[0].planned, max_late_ms: $tx[0].max_late_ms,
		send_errors: [$tx[0].destinations[].send_errors],
		gap_ms: [.[].longest_gap_ms | . * 10 | round / 10], lost: [.[].lost], tail_lost: [.[].tail_lost],
		lost_run: [.[].longest_missing_run], runs: [.[] | [(.missing_runs // [])[] | "\(.len)@\(.first_seq)"] | join(",")],
		received: [.[].received], run_ok: ([.[].run] | unique == [$tx[0].run])}' "${rx[@]}" >"$WORK/cut.json"
	cat "$WORK/cut.json" >>"$WORK/results.jsonl"
	# Every destination must have come back (its last packets arrived) and seen this run only.
	if jq -e '.run_ok | not' "$WORK/cut.json" >/dev/null || jq -e '[.tail_lost[] | select(. > 50)] | length > 0' "$WORK/cut.json" >/dev/null; then
		log "$who N=$n: the stream did not recover: $(cat "$WORK/cut.json")"
		return 1
	fi
	all_via cgw-t1 || { log "$who N=$n: not all destinations via cgw-t1 after the cut"; return 1; }
	log "$who N=$n: $(cat "$WORK/cut.json"), all routes off dx0 after ${moved} ms"
}

# keep_logs WHO N: copy the lab's logs to $KEEP_LOGS/WHO-N (when set).
keep_logs() {
	[[ -n $KEEP_LOGS ]] || return 0
	mkdir -p "$KEEP_LOGS/$1${2:+-$2}"
	cp "$LAB_STATE"/logs/*.log "$KEEP_LOGS/$1${2:+-$2}/" 2>/dev/null || true
}

run_cgwd() {
	local n=$1
	RUNNING=cgwd-$n
	prepare "$n"
	cgwd_config
	"$LAB" start-cgwd
	"$LAB" wait-bgp
	wait_for "$n scale routes from cgwd" 180 routes_in 200 $((n + 2))
	wait_for "all destinations via dx0" 30 all_via dx0
	wait_for "DX BFD Up" 30 bfd_dx_up
	stream_cut cgwd "$n"
	grep 'path usable changed' "$LAB_STATE/logs/cgwd.log" | grep 'path=dx1 usable=false' | head -1 >&2 || true
	keep_logs cgwd "$n"
	"$LAB" down
}

run_bird() {
	local n=$1
	RUNNING=bird-$n
	prepare "$n"
	start_bird_cgw
	"$LAB" wait-bgp
	wait_for "$n scale routes from BIRD" 180 routes_in bird $((n + 1))
	wait_for "all destinations via dx0" 30 all_via dx0
	wait_for "DX BFD Up" 30 bfd_dx_up
	stream_cut bird "$n"
	keep_logs bird "$n"
	"$LAB" down
}

[[ -x $BIN/cgwd && -x $BIN/wireguard-go ]] || { log "run make build first"; exit 1; }
: >"$WORK/results.jsonl"
for n in $SIZES; do
	run_cgwd "$n"
	run_bird "$n"
done

case $CUT in
drop) what="silent drop of every frame crossing DX, both directions at once (one nft rule in lab-dx)" ;;
far-link) what="carrier lost on lab-aws's dx0 only (cgwd's dx0 stays up)" ;;
near-link) what="carrier lost on cgwd's dx0 only" ;;
esac
echo
echo "== DX cut: $what, BFD ${BFD_MS} ms x 3 (detection ${DETECT_MS} ms), $(date -u '+%F %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   udpgap: ${PPS} packets/s to each of 10.200.0.10 and the first, middle and last scale prefix; worst of the four"
echo "   lost = packets lost (at ${PPS}/s: $(bc -l <<<"1000 / $PPS" | sed 's/0*$//; s/\.$//') ms each; more than the gap when the outage came in pieces); gap = longest time between two arrivals"
printf '%9s %10s %10s %10s %10s %8s   %s\n' "N" "cgwd lost" "cgwd gap" "BIRD lost" "BIRD gap" "ratio" "all routes off dx0 (cgwd / BIRD, polled)"
worst() { jq -r --arg who "$1" --argjson n "$2" "select(.who == \$who and .n == \$n) | $3" "$WORK/results.jsonl"; }
for n in $SIZES; do
	cl=$(worst cgwd "$n" '.lost | max') cg=$(worst cgwd "$n" '.gap_ms | max') cm=$(worst cgwd "$n" .moved_ms)
	bl=$(worst bird "$n" '.lost | max') bg=$(worst bird "$n" '.gap_ms | max') bm=$(worst bird "$n" .moved_ms)
	ratio=-
	((cl > 0)) && ratio=$(printf '%.2fx' "$(bc -l <<<"$bl / $cl")")
	printf '%9s %10s %10s %10s %10s %8s   %s / %s ms\n' "$n" "$cl" "$cg" "$bl" "$bg" "$ratio" "$cm" "$bm"
done
echo "   ratio: BIRD lost / cgwd lost"
echo
echo "per destination (10.200.0.10, first, middle, last scale prefix); the cut comes at about sequence $((CUT_AT * PPS)):"
jq -r '"\(.who)\tN=\(.n)\tlost=\(.lost)\tlongest_lost_run=\(.lost_run)\tlost_runs(len@seq)=\(.runs)\tgaps_ms=\(.gap_ms)\treceived=\(.received)\tsent=\(.sent) each\tsender max_late_ms=\(.max_late_ms)\tsend_errors=\(.send_errors)"' "$WORK/results.jsonl"
