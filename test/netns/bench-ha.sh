#!/usr/bin/env bash
# bench-ha.sh: what a failure of box 1 costs in the two-box lab (HA=1
# lab.sh up, README "Two boxes"). Run as root under the lab lock:
#   flock -o /run/cgwd-lab.lock test/netns/bench-ha.sh
#
# For each timer set in $VARIANTS, on a fresh HA lab (box 1 active, box 2
# its active-standby secondary):
#   lan-bfd       the lab as it is: BFD 300 ms x 3 on the LAN (lab-core with
#                 each box), on both DX links and inside every tunnel
#   aws-defaults  AWS's default timers on the AWS side: BFD 300 ms x 3 on DX
#                 (Direct Connect's default), none in the tunnels (AWS's VPN
#                 has no BFD; BGP keepalive 10 s, hold 30 s); LAN BFD kept
# and for each failure kind in $KINDS:
#   sigkill       SIGKILL to box 1's cgwd
#   power         every packet into, out of and through lab-cgw dropped at
#                 once (one nftables transaction), links keep carrier
#   aws-cut       box 1's DX (in lab-dx) and internet link (in lab-inet) cut,
#                 its LAN kept: box 1 itself must withdraw the VPC from the core
# udpgap streams $PPS packets/s each way between lab-onprem and lab-vpc;
# $CUT_AT s in, box 1 fails. The table shows per direction the longest gap,
# the packets lost (at 1,000/s one a millisecond) and the detection time:
# from the failure until the router in front of the boxes routes through box
# 2 (lab-core for on-prem -> VPC, lab-aws for VPC -> on-prem), polled every
# ~20 ms. Box 1 is restored and active again before the next kind.
# Bounded waits everywhere; processes killed by PID; the lab comes down on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB="$HERE/lab.sh"
export LAB_STATE=${LAB_STATE:-/run/cgwd-lab}
BIN=${BIN:-$ROOT/bin}
VARIANTS=${VARIANTS:-lan-bfd aws-defaults}
KINDS=${KINDS:-sigkill power aws-cut}
PPS=${PPS:-1000}
CUT_AT=${CUT_AT:-2} # seconds into the stream

log() { printf 'bench-ha: %s\n' "$*" >&2; }
. "$HERE/lib.sh"
. "$HERE/ha.sh"
WORK=$(mktemp -d)
cleanup() {
	"$LAB" down >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && go build -o "$WORK/udpgap" ./test/netns/udpgap)
RT=()
if chrt -f 10 true 2>/dev/null; then RT=(chrt -f 10); fi

# gateways NS PREFIX: the gateways NS routes PREFIX via, sorted, space-separated.
gateways() {
	in_ns "$1" ip -j route show exact "$2" |
		jq -r '[.[0] | (.gateway // empty), (.nexthops // [] | .[].gateway)] | sort | join(" ")'
}
core_via() { [[ $(gateways lab-core 10.200.0.0/16) == "$1" ]]; }
aws_via() { [[ $(gateways lab-aws 10.10.0.0/16) == "$1" ]]; }
box1_active() { core_via 10.10.100.1 && aws_via 169.254.255.2; }

# prepare VARIANT: the HA lab with VARIANT's timers, both boxes up, box 1 active.
prepare() {
	HA=1 "$LAB" up
	if [[ $1 == aws-defaults ]]; then
		local f
		for f in "$LAB_STATE/cgwd.yaml" "$LAB_STATE/cgw2/cgwd.yaml"; do
			sed -i '/^        bfd: /d' "$f" # the tunnels' BFD (the LAN's and DX's are indented less)
			(($(grep -c 'bfd: ' "$f") == 2)) || { log "could not rewrite $f"; return 1; }
		done
		sed -i '/^protocol bgp aws_t[1-4] /,/^}/s/bfd on;/bfd off;/' "$LAB_STATE"/bird-aws{,-ha}.conf
		(($(cat "$LAB_STATE"/bird-aws{,-ha}.conf | grep -c 'bfd off;') == 4)) || { log "could not rewrite BIRD's config"; return 1; }
		birdc -s "$LAB_STATE/bird-aws.ctl" configure >/dev/null
	fi
	"$LAB" start-cgwd
	"$LAB" start-cgwd2
	"$LAB" wait-tunnels
	"$LAB" wait-bgp
	"$LAB" wait-core
	wait_for "box 1 active both ways" 60 box1_active
}

# fail KIND / restore KIND: box 1's failure (ha.sh's box_*) and its end.
fail() {
	case $1 in
	sigkill) kill -KILL "$(cat "$LAB_STATE/pids/cgwd.pid")" ;;
	power) box_isolate 1 ;;
	aws-cut) box_aws_cut 1 ;;
	*) log "unknown failure kind $1"; return 2 ;;
	esac
}
restore() {
	case $1 in
	sigkill) wait_for "box 1's cgwd to exit" 10 bash -c "! kill -0 $(cat "$LAB_STATE/pids/cgwd.pid")"; "$LAB" start-cgwd ;;
	power) box_unisolate 1 ;;
	aws-cut) box_aws_restore 1 ;;
	esac
}

receiving() { grep -q 'listening on' "$WORK/$1.err"; }

# run VARIANT KIND DURATION: one stream each way, box 1 fails $CUT_AT s in;
# appends a JSON line to results.jsonl.
run() {
	local variant=$1 kind=$2 duration=$3 up_ms=- down_ms=- t0 now
	in_ns lab-vpc "${RT[@]}" "$WORK/udpgap" recv -listen 10.200.0.10:9100 -duration $((duration + 10))s -json >"$WORK/up.json" 2>"$WORK/up.err" &
	local rxup=$!
	in_ns lab-onprem "${RT[@]}" "$WORK/udpgap" recv -listen 10.10.0.10:9101 -duration $((duration + 10))s -json >"$WORK/down.json" 2>"$WORK/down.err" &
	local rxdown=$!
	wait_for "receiver in lab-vpc" 10 receiving up
	wait_for "receiver in lab-onprem" 10 receiving down
	in_ns lab-onprem "${RT[@]}" "$WORK/udpgap" send -to 10.200.0.10:9100 -pps "$PPS" -duration "${duration}s" -json >"$WORK/txup.json" &
	local txup=$!
	in_ns lab-vpc "${RT[@]}" "$WORK/udpgap" send -to 10.10.0.10:9101 -pps "$PPS" -duration "${duration}s" -json >"$WORK/txdown.json" &
	local txdown=$!
	sleep "$CUT_AT"
	t0=$EPOCHREALTIME
	fail "$kind"
	local deadline=$((SECONDS + duration))
	while ((SECONDS < deadline)) && [[ $up_ms == - || $down_ms == - ]]; do
		now=$EPOCHREALTIME
		if [[ $up_ms == - ]] && core_via 10.10.100.2; then up_ms=$(bc <<<"($now - $t0) * 1000 / 1"); fi
		if [[ $down_ms == - ]] && aws_via 169.254.254.2; then down_ms=$(bc <<<"($now - $t0) * 1000 / 1"); fi
		sleep 0.01
	done
	wait "$txup" "$txdown" || { log "a sender failed"; return 1; }
	wait "$rxup" || { log "receiver in lab-vpc failed: $(cat "$WORK/up.err")"; return 1; }
	wait "$rxdown" || { log "receiver in lab-onprem failed: $(cat "$WORK/down.err")"; return 1; }
	jq -n -c --arg v "$variant" --arg k "$kind" --arg upd "$up_ms" --arg downd "$down_ms" \
		--slurpfile u "$WORK/up.json" --slurpfile d "$WORK/down.json" \
		--slurpfile tu "$WORK/txup.json" --slurpfile td "$WORK/txdown.json" '{
		variant: $v, kind: $k,
		up: {gap_ms: ($u[0].longest_gap_ms | round), lost: $u[0].lost, tail_lost: $u[0].tail_lost, detect_ms: $upd, late_ms: $tu[0].max_late_ms},
		down: {gap_ms: ($d[0].longest_gap_ms | round), lost: $d[0].lost, tail_lost: $d[0].tail_lost, detect_ms: $downd, late_ms: $td[0].max_late_ms}}' |
		tee -a "$WORK/results.jsonl" >&2
	restore "$kind"
	wait_for "box 1 active both ways again" 120 box1_active
}

[[ -x $BIN/cgwd && -x $BIN/wireguard-go ]] || { log "run make build first"; exit 1; }
: >"$WORK/results.jsonl"
for variant in $VARIANTS; do
	duration=8
	[[ $variant == aws-defaults ]] && duration=45 # a tunnel's death takes BGP's 30 s hold time there
	prepare "$variant"
	for kind in $KINDS; do
		log "$variant: $kind"
		run "$variant" "$kind" "$duration"
	done
	"$LAB" down
done

echo
echo "== box 1 fails (HA lab, box 2 its active-standby secondary), $(date -u '+%F %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   udpgap ${PPS} packets/s each way between lab-onprem and lab-vpc; the failure comes ${CUT_AT} s in"
echo "   gap: longest time between two arrivals; lost: packets lost (+ at the end of the run);"
echo "   detect: failure -> lab-core (up) / lab-aws (down) routes through box 2, polled"
printf '%-13s %-8s %8s %9s %9s   %8s %9s %9s\n' variant failure "up gap" "up lost" "up det." "down gap" "down lost" "down det."
jq -r '[.variant, .kind, "\(.up.gap_ms) ms", "\(.up.lost)+\(.up.tail_lost)", "\(.up.detect_ms) ms",
	"\(.down.gap_ms) ms", "\(.down.lost)+\(.down.tail_lost)", "\(.down.detect_ms) ms"] | @tsv' "$WORK/results.jsonl" |
	while IFS=$'\t' read -r v k ug ul ud dg dl dd; do
		printf '%-13s %-8s %8s %9s %9s   %8s %9s %9s\n' "$v" "$k" "$ug" "$ul" "$ud" "$dg" "$dl" "$dd"
	done
echo "   senders at worst behind schedule (ms): $(jq -s -c '[.[] | [.up.late_ms, .down.late_ms] | max | round]' "$WORK/results.jsonl")"
