#!/usr/bin/env bash
# bench-ipsec.sh: iperf3 over one IPsec tunnel with cgwd on both ends
# (AES-GCM-256), with strongSwan kernel-libipsec on both ends (AES-GCM-256),
# over upstream wireguard-go on both ends and over the bare veth; and IKE
# establishment (IKEv2 and IKEv1) and IKE and Child SA rekey times (both
# versions) of cgwd vs strongSwan, each with cgwd's ratio to strongSwan.
# Private namespaces (ipc-a/ipc-b for cgwd, ips-a/ips-b for strongSwan), not
# the lab's. Run as root WITHOUT wrapping it in flock: the script holds
# /run/cgwd-lab.lock itself for its shell part and lets it go before the cgwd
# part, which runs through `go test ./test/netns`, whose TestMain takes it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/cgwd-bench-ipsec.XXXXXX)
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for ns in ips-a ips-b ipw-a ipw-b ipc-a ipc-b; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf 'bench-ipsec: %s\n' "$*" >&2; }
. "$HERE/lib.sh"
take_lab_lock bench-ipsec.sh

iperf() { # iperf NS_SERVER NS_CLIENT DST: prints receiver Mbit/s
	ip netns exec "$1" iperf3 -s -1 >/dev/null 2>&1 &
	local srv=$! out=""
	for _ in $(seq 50); do
		out=$(ip netns exec "$2" iperf3 -c "$3" -t 5 -f m 2>/dev/null) && break
		sleep 0.1
	done
	wait "$srv" 2>/dev/null || true
	awk '/receiver/ { print $7, $8 }' <<<"$out"
}

pair() { # pair A B: two namespaces joined by veth v0, 10.96.0.1 and 10.96.0.2
	ip netns add "$1"; ip netns add "$2"
	ip link add v0 netns "$1" type veth peer name v0 netns "$2"
	ip -n "$1" addr add 10.96.0.1/24 dev v0; ip -n "$2" addr add 10.96.0.2/24 dev v0
	for ns in "$1" "$2"; do ip -n "$ns" link set v0 up; ip -n "$ns" link set lo up; done
}

# ss_conf SIDE VERSION IKE_PROPOSAL: the lab's template with AWS's default
# timers (see ipsec.sh's times) for strongSwan SIDE (a or b), ESP
# aes256gcm16-ecp384 (PFS in its rekeys and in IKEv1's quick mode).
ss_conf() {
	local l=10.96.0.1 r=10.96.0.2
	[[ $1 == b ]] && l=10.96.0.2 r=10.96.0.1
	sed -e "s|@AWS_OUTSIDE@|$l|g" -e "s|@CGW_OUTSIDE@|$r|g" -e "s|@IKE_PROPOSALS@|$3|" \
		-e "s|@ESP_PROPOSALS@|aes256gcm16-ecp384|" -e "s|@START_ACTION@|none|" -e "s|@IKE_VERSION@|$2|" -e "s|@DPD_ACTION@|clear|" \
		-e "s|@IKE_REKEY@|28530s|" -e "s|@IKE_OVER@|270s|" -e "s|@IKE_RAND@|270s|" \
		-e "s|@CHILD_REKEY@|3330s|" -e "s|@CHILD_LIFE@|3600s|" -e "s|@CHILD_RAND@|270s|" \
		-e "s|@PSK@|bench-psk|" "$HERE/strongswan/swanctl.conf" >"$WORK/$1/swanctl.conf"
}
swan() { swanctl "$@" --uri "unix://$WORK/a/run/charon.vici"; } # against strongSwan a, the initiator
ss_load() { # ss_load SIDE: (re)load SIDE's swanctl.conf
	swanctl --load-all --clear --noprompt --file "$WORK/$1/swanctl.conf" --uri "unix://$WORK/$1/run/charon.vici" >/dev/null 2>&1
}
ss_initiate() { # ss_initiate: strongSwan a initiates; prints how long swanctl took (µs, including the CLI)
	local start
	start=$(date +%s%N)
	swan --initiate --child aws >/dev/null
	echo $((($(date +%s%N) - start) / 1000))
}
# ss_rekey ike|child PAT: strongSwan a rekeys its established IKE SA or
# installed Child SA (swanctl --rekey, which returns at once) and prints
# how long that took by charon's own log (ms): from the vici request to
# the first line after it that matches the awk regex PAT (no backslashes:
# awk -v reads them as escapes).
ss_rekey() {
	local kind=$1 pat=$2 log=$WORK/a/run/charon.log n id
	if [[ $kind == ike ]]; then
		id=$(swan --list-sas | sed -n 's/^aws: #\([0-9]*\), ESTABLISHED,.*/\1/p' | tail -1)
	else
		id=$(swan --list-sas | sed -n 's/^  aws: #\([0-9]*\), reqid [0-9]*, INSTALLED,.*/\1/p' | tail -1)
	fi
	n=$(wc -l <"$log")
	swan --rekey --"$kind"-id "$id" >/dev/null
	rekeyed() { awk -v n="$n" -v pat="$pat" 'NR > n && $0 ~ pat { f = 1 } END { exit !f }' "$log"; }
	wait_for "strongSwan's $kind rekey" 10 rekeyed
	tail -n +"$((n + 1))" "$log" | awk -v pat="$pat" '
		function ms(t, a) { split(t, a, ":"); return (a[1] * 3600 + a[2] * 60 + a[3]) * 1000 }
		/vici rekey/ && !s { s = ms($2) }
		s && $0 ~ pat { printf "%d\n", ms($2) - s; exit }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# ss_rekeys VERSION: strongSwan's IKE and Child SA rekey times (median of
# 3 each, ms; 0: not measured) as "IKE CHILD"; the IKE SA is done at "rekeyed"
# (IKEv2) or at its new main mode (IKEv1: charon's rekey is a new ISAKMP
# SA that takes the Child SA over), the Child SA at its install.
ss_rekeys() {
	local ike child i pat='IKE_SA aws.[0-9]+. rekeyed'
	[[ $1 == 1 ]] && pat='IKE_SA aws.[0-9]+. established'
	ike=$(for i in 1 2 3; do ss_rekey ike "$pat"; sleep 0.5; done | median)
	child=$(for i in 1 2 3; do ss_rekey child 'CHILD_SA aws.[0-9]+. established'; sleep 0.5; done | median)
	echo "${ike:-0} ${child:-0}"
}

echo "== bare veth"
pair ips-a ips-b
echo "bare-veth: $(iperf ips-b ips-a 10.96.0.2)"

echo "== strongSwan kernel-libipsec on both ends (aes256gcm16)"
for side in a b; do
	d=$WORK/$side
	mkdir -p "$d/run"
	# Log times in milliseconds, each line at once: the rekey rows read them.
	sed -e "s|@FRAGMENT_SIZE@|1280|" -e 's|^\(\s*\)time_format = .*|&\n\1time_add_ms = yes\n\1flush_line = yes|' \
		"$HERE/strongswan/strongswan.conf" >"$d/run/strongswan.conf"
	ss_conf "$side" 2 aes256gcm16-prfsha384-ecp384
	ip netns exec "ips-$side" sh -c 'mount --bind "$1" /run && exec env STRONGSWAN_CONF=/run/strongswan.conf /usr/lib/ipsec/charon' \
		sh "$d/run" >"$d/charon.out" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	PIDS+=($!)
done
charon_ready() { [[ -S $WORK/$1/run/charon.vici ]] && ip -n "ips-$1" link show ipsec0; }
for side in a b; do
	wait_for "charon in ips-$side (vici socket, ipsec0)" 10 charon_ready "$side"
	ip -n "ips-$side" link set ipsec0 up
	ss_load "$side"
done
ip -n ips-a addr add 169.254.78.1/32 dev ipsec0; ip -n ips-b addr add 169.254.78.2/32 dev ipsec0
ss_us=$(ss_initiate)
echo "strongswan-ike-establish: ${ss_us}us (swanctl --initiate, including the CLI)"
echo "strongswan-libipsec-both-ends: $(iperf ips-b ips-a 169.254.78.2)"
read -r ss2_ike ss2_child <<<"$(ss_rekeys 2)"
echo "strongswan-ikev2-rekey: ike ${ss2_ike}ms child ${ss2_child}ms (median of 3, charon's log)"
swan --terminate --ike aws --timeout 5 >/dev/null 2>&1 || true
for side in a b; do ss_conf "$side" 1 aes256-sha384-ecp384; ss_load "$side"; done
ss1_us=$(ss_initiate)
echo "strongswan-ikev1-establish: ${ss1_us}us (swanctl --initiate, main mode + quick mode, including the CLI)"
read -r ss1_ike ss1_child <<<"$(ss_rekeys 1)"
echo "strongswan-ikev1-rekey: ike ${ss1_ike}ms child ${ss1_child}ms (median of 3, charon's log)"

echo "== upstream wireguard-go on both ends (bin/wireguard-go, the version cgwd embeds)"
if [[ -x $ROOT/bin/wireguard-go ]] && command -v wg >/dev/null; then
	pair ipw-a ipw-b
	for side in a b; do
		wg genkey >"$WORK/wg-$side.key"
		wg pubkey <"$WORK/wg-$side.key" >"$WORK/wg-$side.pub"
		ip netns exec "ipw-$side" env LOG_LEVEL=error "$ROOT/bin/wireguard-go" -f "ipbw-$side" >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
		PIDS+=($!)
	done
	for side in a b; do
		wait_for "ipbw-$side UAPI socket" 10 test -S "/var/run/wireguard/ipbw-$side.sock"
	done
	ip netns exec ipw-a wg set ipbw-a private-key "$WORK/wg-a.key" listen-port 51900 peer "$(cat "$WORK/wg-b.pub")" allowed-ips 0.0.0.0/0 endpoint 10.96.0.2:51900
	ip netns exec ipw-b wg set ipbw-b private-key "$WORK/wg-b.key" listen-port 51900 peer "$(cat "$WORK/wg-a.pub")" allowed-ips 0.0.0.0/0 endpoint 10.96.0.1:51900
	ip -n ipw-a addr add 169.254.79.1/30 dev ipbw-a; ip -n ipw-b addr add 169.254.79.2/30 dev ipbw-b
	ip -n ipw-a link set ipbw-a up; ip -n ipw-b link set ipbw-b up
	echo "wireguard-go-both-ends: $(iperf ipw-b ipw-a 169.254.79.2)"
	rm -f /var/run/wireguard/ipbw-a.sock /var/run/wireguard/ipbw-b.sock
else
	echo "wireguard-go-both-ends: skipped (make build and wireguard-tools needed)"
fi

echo "== cgwd IPsec on both ends (aes256gcm16; in-process tunnels, see TestIPsecCgwdToCgwd)"
cleanup_ns() { for ns in ips-a ips-b ipw-a ipw-b; do ip netns del "$ns" 2>/dev/null || true; done; }
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()
cleanup_ns
flock -u 9 # go test's TestMain takes the lock itself
exec 9>&-
cd "$ROOT"
CGWD_IPSEC_BENCH=1 go test -count=1 -v -run 'TestIPsecCgwdToCgwd/aInitiates=true|TestIPsecRekeyBench' ./test/netns/ 2>&1 |
	grep -o 'BENCH .*' | sed -e 's/^BENCH //' | tee "$WORK/cgwd.txt"
# cgwd beside strongSwan, "<row>: cgwd X, strongswan Y, ratio R" (below 1:
# cgwd is faster). The establishment figures are swanctl --initiate's
# against a cgwd tunnel's start to both ends up, so strongSwan's include
# the swanctl CLI, which flatters cgwd; the rekeys are each daemon's own
# times (charon's log; cgwd's status), without the CLI.
row() { # row NAME CGWD_KEY STRONGSWAN_US
	awk -v name="$1" -v key="$2:" -v ss="$3" '$1 == key {
		v = $2; us = v + 0
		if (v ~ /ms$/) us *= 1000; else if (v ~ /µs$|us$/) us *= 1; else if (v ~ /s$/) us *= 1000000
		if (ss > 0) printf "%s: cgwd %dus, strongswan %dus, ratio %.2f\n", name, us, ss, us / ss
		else printf "%s: cgwd %dus, strongswan not measured\n", name, us
	}' "$WORK/cgwd.txt"
}
row ikev2-establish cgwd-ike-establish "$ss_us"
row ikev1-establish cgwd-ikev1-establish "$ss1_us"
row ikev2-ike-rekey cgwd-ikev2-ike-rekey "$((ss2_ike * 1000))"
row ikev2-child-rekey cgwd-ikev2-child-rekey "$((ss2_child * 1000))"
row ikev1-ike-rekey cgwd-ikev1-ike-rekey "$((ss1_ike * 1000))"
row ikev1-child-rekey cgwd-ikev1-child-rekey "$((ss1_child * 1000))"
