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
#   - a UDP stream from lab-onprem sends $PPS packets/s to each of these four
#     destinations; $CUT_AT s in, every packet on dx0 is silently dropped at
#     both ends (nftables netdev ingress); the receiver reports the longest gap
#     per destination. The table shows the worst of the four.
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
PORT=9000
PY=/usr/bin/python3
DETECT_MS=$((BFD_MS * 3))

log() { printf 'bench-failover: %s\n' "$*" >&2; }
. "$HERE/lib.sh"
cleanup() { "$LAB" down >/dev/null 2>&1 || true; rm -rf "$WORK"; }
WORK=$(mktemp -d)
trap cleanup EXIT

# The stream: `udpgap.py rx PORT SECONDS NDEST` in lab-vpc, `udpgap.py tx
# DST,DST.. PORT PPS SECONDS` in lab-onprem. Payload: destination index, sequence.
cat >"$WORK/udpgap.py" <<'EOF'
import json, socket, struct, sys, time
if sys.argv[1] == "rx":
    port, secs, n = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", port))
    open(sys.argv[5], "w").close()  # ready
    last, gap, got, top = [None] * n, [0.0] * n, [0] * n, [-1] * n
    end = time.monotonic() + secs
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            b = s.recv(64)
        except socket.timeout:
            break
        now = time.monotonic()
        i, seq = struct.unpack("!II", b[:8])
        if i >= n:
            continue
        if last[i] is not None:
            gap[i] = max(gap[i], now - last[i])
        last[i] = now
        got[i] += 1
        top[i] = max(top[i], seq)
    print(json.dumps({"gap_ms": [round(g * 1000, 1) for g in gap], "received": got, "last_seq": top}))
else:
    dsts, port, pps, secs = sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    total, seq, t0 = int(pps * secs), 0, time.monotonic()
    while seq < total:
        due = min(total, int((time.monotonic() - t0) * pps) + 1)
        while seq < due:
            for i, d in enumerate(dsts):
                try:
                    s.sendto(struct.pack("!II", i, seq) + bytes(24), (d, port))
                except OSError:
                    pass  # a send error during the cut is a lost packet
            seq += 1
        time.sleep(0.0005)
    print(json.dumps({"sent": seq}))
EOF

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

# cut: stream, drop everything on dx0 at both ends $CUT_AT s in; prints "worst_gap_ms gaps..."
cut() {
	local who=$1 n=$2 ready="$WORK/ready" rxpid txpid moved="-"
	rm -f "$ready"
	in_ns lab-vpc "$PY" "$WORK/udpgap.py" rx "$PORT" $((DURATION + 3)) "${#DESTS[@]}" "$ready" >"$WORK/rx.json" &
	rxpid=$!
	wait_for "receiver" 10 test -e "$ready"
	in_ns lab-onprem "$PY" "$WORK/udpgap.py" tx "$(IFS=,; echo "${DESTS[*]}")" "$PORT" "$PPS" "$DURATION" >"$WORK/tx.json" &
	txpid=$!
	sleep "$CUT_AT" # the stream's schedule: the cut comes $CUT_AT s in
	local t0=$EPOCHREALTIME ns
	for ns in lab-cgw lab-aws; do
		in_ns "$ns" nft add table netdev benchcut
		in_ns "$ns" nft add chain netdev benchcut ing '{ type filter hook ingress device "dx0" priority 0; }'
		in_ns "$ns" nft add rule netdev benchcut ing drop
	done
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
	wait "$rxpid" || { log "receiver failed"; return 1; }
	local sent
	sent=$(jq .sent "$WORK/tx.json")
	jq -c --arg who "$who" --argjson n "$n" --argjson sent "$sent" --arg moved "$moved" \
		'{who: $who, n: $n, sent: $sent, moved_ms: $moved} + .' "$WORK/rx.json" >>"$WORK/results.jsonl"
	# Every destination must have come back: its last packets arrived.
	if jq -e --argjson sent "$sent" '[.last_seq[] | select(. < $sent - 50)] | length > 0' "$WORK/rx.json" >/dev/null; then
		log "$who N=$n: the stream did not recover: $(cat "$WORK/rx.json")"
		return 1
	fi
	all_via cgw-t1 || { log "$who N=$n: not all destinations via cgw-t1 after the cut"; return 1; }
	log "$who N=$n: $(cat "$WORK/rx.json"), all routes off dx0 after ${moved} ms"
}

run_cgwd() {
	local n=$1
	prepare "$n"
	cgwd_config
	"$LAB" start-cgwd
	"$LAB" wait-bgp
	wait_for "$n scale routes from cgwd" 180 routes_in 200 $((n + 2))
	wait_for "all destinations via dx0" 30 all_via dx0
	wait_for "DX BFD Up" 30 bfd_dx_up
	cut cgwd "$n"
	grep 'path usable changed' "$LAB_STATE/logs/cgwd.log" | grep 'path=dx1 usable=false' | head -1 >&2 || true
	"$LAB" down
}

run_bird() {
	local n=$1
	prepare "$n"
	start_bird_cgw
	"$LAB" wait-bgp
	wait_for "$n scale routes from BIRD" 180 routes_in bird $((n + 1))
	wait_for "all destinations via dx0" 30 all_via dx0
	wait_for "DX BFD Up" 30 bfd_dx_up
	cut bird "$n"
	"$LAB" down
}

[[ -x $BIN/cgwd && -x $BIN/wireguard-go ]] || { log "run make build first"; exit 1; }
: >"$WORK/results.jsonl"
for n in $SIZES; do
	run_cgwd "$n"
	run_bird "$n"
done

echo
echo "== DX cut (silent drop of every packet on dx0, both ends), BFD ${BFD_MS} ms x 3 (detection ${DETECT_MS} ms), $(date -u '+%F %H:%M UTC')"
echo "   longest gap of a ${PPS} packets/s UDP stream to each of 10.200.0.10 and the first, middle and last scale prefix; worst of the four"
printf '%9s %14s %14s %8s   %s\n' "N" "cgwd gap ms" "BIRD gap ms" "ratio" "all routes off dx0 (cgwd / BIRD, polled)"
for n in $SIZES; do
	c=$(jq -r --argjson n "$n" 'select(.who == "cgwd" and .n == $n) | .gap_ms | max' "$WORK/results.jsonl")
	b=$(jq -r --argjson n "$n" 'select(.who == "bird" and .n == $n) | .gap_ms | max' "$WORK/results.jsonl")
	cm=$(jq -r --argjson n "$n" 'select(.who == "cgwd" and .n == $n) | .moved_ms' "$WORK/results.jsonl")
	bm=$(jq -r --argjson n "$n" 'select(.who == "bird" and .n == $n) | .moved_ms' "$WORK/results.jsonl")
	printf '%9s %14s %14s %7.2fx   %s / %s ms\n' "$n" "$c" "$b" "$(bc -l <<<"$b / $c")" "$cm" "$bm"
done
echo
echo "per destination (10.200.0.10, first, middle, last scale prefix):"
jq -r '"\(.who)\tN=\(.n)\tgaps_ms=\(.gap_ms)\treceived=\(.received)\tsent=\(.sent)"' "$WORK/results.jsonl"
