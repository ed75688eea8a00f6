#!/usr/bin/env bash
# bench-ipsec.sh: iperf3 over one IPsec tunnel with cgwd on both ends
# (AES-GCM-256), with strongSwan kernel-libipsec on both ends (AES-GCM-256),
# over upstream wireguard-go on both ends and over the bare veth; and IKE
# establishment time cgwd vs strongSwan.
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

echo "== bare veth"
pair ips-a ips-b
echo "bare-veth: $(iperf ips-b ips-a 10.96.0.2)"

echo "== strongSwan kernel-libipsec on both ends (aes256gcm16)"
for side in a b; do
	d=$WORK/$side
	mkdir -p "$d/run"
	cp "$HERE/strongswan/strongswan.conf" "$d/run/strongswan.conf"
	if [[ $side == a ]]; then l=10.96.0.1 r=10.96.0.2; else l=10.96.0.2 r=10.96.0.1; fi
	# The lab's template with AWS's default timers (see ipsec.sh's times), IKEv2.
	sed -e "s|@AWS_OUTSIDE@|$l|g" -e "s|@CGW_OUTSIDE@|$r|g" -e "s|@IKE_PROPOSALS@|aes256gcm16-prfsha384-ecp384|" \
		-e "s|@ESP_PROPOSALS@|aes256gcm16-ecp384|" -e "s|@START_ACTION@|none|" -e "s|@IKE_VERSION@|2|" -e "s|@DPD_ACTION@|clear|" \
		-e "s|@IKE_REKEY@|28530s|" -e "s|@IKE_OVER@|270s|" -e "s|@IKE_RAND@|270s|" \
		-e "s|@CHILD_REKEY@|3330s|" -e "s|@CHILD_LIFE@|3600s|" -e "s|@CHILD_RAND@|270s|" \
		-e "s|@PSK@|bench-psk|" "$HERE/strongswan/swanctl.conf" >"$d/swanctl.conf"
	ip netns exec "ips-$side" sh -c 'mount --bind "$1" /run && exec env STRONGSWAN_CONF=/run/strongswan.conf /usr/lib/ipsec/charon' \
		sh "$d/run" >"$d/charon.out" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	PIDS+=($!)
done
charon_ready() { [[ -S $WORK/$1/run/charon.vici ]] && ip -n "ips-$1" link show ipsec0; }
for side in a b; do
	wait_for "charon in ips-$side (vici socket, ipsec0)" 10 charon_ready "$side"
	ip -n "ips-$side" link set ipsec0 up
	swanctl --load-all --noprompt --file "$WORK/$side/swanctl.conf" --uri "unix://$WORK/$side/run/charon.vici" >/dev/null 2>&1
done
ip -n ips-a addr add 169.254.78.1/32 dev ipsec0; ip -n ips-b addr add 169.254.78.2/32 dev ipsec0
start=$(date +%s%N)
swanctl --initiate --child aws --uri "unix://$WORK/a/run/charon.vici" >/dev/null
ss_us=$(( ($(date +%s%N) - start) / 1000 ))
echo "strongswan-ike-establish: ${ss_us}us (swanctl --initiate, including the CLI)"
echo "strongswan-libipsec-both-ends: $(iperf ips-b ips-a 169.254.78.2)"

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
CGWD_IPSEC_BENCH=1 go test -count=1 -v -run 'TestIPsecCgwdToCgwd/aInitiates=true' ./test/netns/ 2>&1 |
	grep -o 'BENCH .*' | sed -e 's/^BENCH //' | tee "$WORK/cgwd.txt"
# cgwd's IKEv2 establishment beside strongSwan's (a ratio below 1: cgwd is
# faster; strongSwan's figure includes the swanctl CLI, so it flatters cgwd).
awk -v ss="$ss_us" '/^cgwd-ike-establish:/ {
	v = $2; us = v + 0
	if (v ~ /ms$/) us *= 1000; else if (v ~ /µs$|us$/) us *= 1; else if (v ~ /s$/) us *= 1000000
	printf "ikev2-establish: cgwd %dus, strongswan %dus, ratio %.2f\n", us, ss, us / ss
}' "$WORK/cgwd.txt"
# Hooks for rows not measured yet (the helper on IKEv1 or a later one fills
# them): IKEv1 main + quick mode establishment, and IKE/Child rekey times,
# each for cgwd and strongSwan, printed as "<row>: cgwd X, strongswan Y, ratio R".
for row in ikev1-establish ikev2-rekey ikev1-rekey; do
	echo "$row: not measured yet"
done
