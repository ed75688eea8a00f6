#!/usr/bin/env bash
# lab.sh: build and tear down cgwd's lab of network namespaces.
# Names and addresses are fixed; see test/netns/README.md.
#
#   lab.sh up           namespaces, links, addresses, the AWS side's WireGuard peers
#                       (HA=1: the two-box lab instead, see ha.sh and README.md "Two boxes";
#                       with TUNNEL=ipsec both boxes' tunnels end in strongSwan, see ipsec.sh)
#   lab.sh start-cgwd   start cgwd in lab-cgw with the lab config, wait for its socket
#   lab.sh wait-tunnels wait until both tunnels have handshaken (bounded)
#   lab.sh wait-bgp     wait until BIRD has all three sessions Established (bounded)
#   lab.sh stop-cgwd    SIGTERM cgwd and wait for it to exit
#   lab.sh dx-cut       silently drop everything the DX cross-connect forwards, both ways (one nft rule)
#   lab.sh dx-restore   remove every rule dx-cut (or a test) added in lab-dx
#   lab.sh dx-link cgw|aws down|up
#                       drop or restore carrier on one side of DX only (lab-dx's end of that veth)
#   lab.sh down         kill what the lab started (by PID) and delete its namespaces
#   lab.sh start-cgwd2 | stop-cgwd2 | wait-core | show-ha
#                       the HA lab's second box and core router (ha.sh)
#   lab.sh box-isolate|box-unisolate|box-aws-cut|box-aws-restore 1|2
#                       the HA lab's box failures (ha.sh): power loss; every AWS path cut, LAN kept
#
# Processes are recorded in $LAB_STATE/pids and killed by PID, never by name.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB_STATE=${LAB_STATE:-/run/cgwd-lab}
BIN=${BIN:-$ROOT/bin}
NAMESPACES=(lab-onprem lab-cgw lab-inet lab-dx lab-aws lab-vpc)
WG_SOCKETS=(cgw-t1 cgw-t2 aws-t1 aws-t2 bwg-c bwg-a)
HA=${HA:-}

log() { printf 'lab: %s\n' "$*" >&2; }
. "$HERE/lib.sh"
. "$HERE/ha.sh"

veth() { # veth NS1 IF1 NS2 IF2
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
	in_ns "$1" ip link set "$2" up
	in_ns "$3" ip link set "$4" up
}

genkeys() {
	mkdir -p "$LAB_STATE/keys"
	chmod 700 "$LAB_STATE/keys"
	local k
	for k in cgw-t1 cgw-t2 aws-t1 aws-t2 bwg-c bwg-a "$@"; do
		(umask 077; wg genkey >"$LAB_STATE/keys/$k.key")
		wg pubkey <"$LAB_STATE/keys/$k.key" >"$LAB_STATE/keys/$k.pub"
	done
}

pub() { cat "$LAB_STATE/keys/$1.pub"; }

# dx_cross_connect: the Direct Connect link, lab-cgw dx0 <-> lab-dx <-> lab-aws dx0.
# lab-dx is the provider in between, as a DX cross-connect is: a bridge br-dx
# with one port toward each end (dx-cgw, dx-aws), no addresses of its own, and
# an empty nftables chain (bridge lab_dx cut) where a cut is one rule.
dx_cross_connect() {
	veth lab-cgw dx0 lab-dx dx-cgw
	veth lab-dx dx-aws lab-aws dx0
	in_ns lab-dx ip link add br-dx type bridge stp_state 0 forward_delay 0
	in_ns lab-dx ip link set dx-cgw master br-dx
	in_ns lab-dx ip link set dx-aws master br-dx
	in_ns lab-dx ip link set br-dx up
	in_ns lab-dx nft -f - <<-'EOF'
		table bridge lab_dx {
			chain cut { type filter hook forward priority 0; policy accept; }
		}
	EOF
}

# aws_wg NAME INSIDE PORT CGW_KEY: an upstream wireguard-go peer in lab-aws.
aws_wg() {
	local name=$1 inside=$2 port=$3 peer=$4
	start_bg "$name" lab-aws env LOG_LEVEL=error "$BIN/wireguard-go" -f "$name"
	wait_for "$name UAPI socket" 10 test -S "/var/run/wireguard/$name.sock"
	in_ns lab-aws wg set "$name" private-key "$LAB_STATE/keys/$name.key" listen-port "$port" \
		peer "$(pub "$peer")" allowed-ips 0.0.0.0/0
	in_ns lab-aws ip addr add "$inside" dev "$name"
	in_ns lab-aws ip link set "$name" up
}

cmd_up() {
	for b in cgwd wireguard-go; do
		[[ -x $BIN/$b ]] || { log "$BIN/$b missing: run make build"; exit 1; }
	done
	cmd_down
	mkdir -p "$LAB_STATE"
	for ns in "${NAMESPACES[@]}"; do
		ip netns add "$ns"
		in_ns "$ns" ip link set lo up
	done
	if [[ $HA == 1 ]]; then
		ha_links # lab-onprem's eth0 goes to lab-core instead of lab-cgw's lan0
	else
		veth lab-onprem eth0 lab-cgw lan0
	fi
	veth lab-cgw wan0 lab-inet to-cgw
	veth lab-inet to-aws lab-aws wan0
	dx_cross_connect
	veth lab-aws vpc0 lab-vpc eth0

	in_ns lab-onprem ip addr add 10.10.0.10/24 dev eth0
	in_ns lab-onprem ip route add default via 10.10.0.1

	[[ $HA == 1 ]] || in_ns lab-cgw ip addr add 10.10.0.1/24 dev lan0
	in_ns lab-cgw ip addr add 198.51.100.2/24 dev wan0
	in_ns lab-cgw ip addr add 169.254.255.2/30 dev dx0
	in_ns lab-cgw ip route add default via 198.51.100.1

	in_ns lab-inet ip addr add 198.51.100.1/24 dev to-cgw
	in_ns lab-inet ip addr add 203.0.113.1/24 dev to-aws

	in_ns lab-aws ip addr add 203.0.113.10/24 dev wan0
	in_ns lab-aws ip addr add 203.0.113.20/24 dev wan0
	in_ns lab-aws ip addr add 169.254.255.1/30 dev dx0
	in_ns lab-aws ip addr add 10.200.0.1/16 dev vpc0
	in_ns lab-aws ip route add 198.51.100.0/24 via 203.0.113.1

	in_ns lab-vpc ip addr add 10.200.0.10/16 dev eth0
	in_ns lab-vpc ip route add default via 10.200.0.1

	for ns in lab-cgw lab-inet lab-aws; do
		in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
	done

	if [[ ${TUNNEL:-wireguard} == ipsec ]]; then # strongSwan AWS endpoints instead of wireguard-go; see ipsec.sh
		LAB_STATE=$LAB_STATE "$HERE/ipsec.sh" up # HA=1: tunnels 3 and 4 to lab-cgw2 too
		if [[ $HA == 1 ]]; then
			ha_routing
			start_bird
			log "up (HA=1 TUNNEL=ipsec): ${NAMESPACES[*]} ${HA_NAMESPACES[*]} lab-aws-t1 lab-aws-t2 lab-aws-t3 lab-aws-t4"
			return
		fi
		start_bird
		log "up (TUNNEL=ipsec): ${NAMESPACES[*]} lab-aws-t1 lab-aws-t2"
		return
	fi
	if [[ $HA == 1 ]]; then genkeys "${HA_KEYS[@]}"; else genkeys; fi
	aws_wg aws-t1 169.254.10.1/30 51820 cgw-t1
	aws_wg aws-t2 169.254.11.1/30 51821 cgw-t2
	# Both wireguard-go peers share lab-aws and would answer from its primary
	# address; route tunnel 2's endpoint (source port 51821) with 203.0.113.20
	# as its source, as AWS's second endpoint does.
	in_ns lab-aws ip route add 198.51.100.0/24 via 203.0.113.1 src 203.0.113.20 table 102
	in_ns lab-aws ip rule add ipproto udp sport 51821 lookup 102 priority 100

	sed -e "s|@LAB_STATE@|$LAB_STATE|g" \
		-e "s|@AWS_T1_PUB@|$(pub aws-t1)|" -e "s|@AWS_T2_PUB@|$(pub aws-t2)|" \
		"$HERE/cgwd.lab.yaml" >"$LAB_STATE/cgwd.yaml"
	chmod 600 "$LAB_STATE/cgwd.yaml"
	if [[ $HA == 1 ]]; then
		ha_up # the second box's links, tunnels' AWS ends, configs; lab-core's FRR
		start_bird
		log "up (HA=1): ${NAMESPACES[*]} ${HA_NAMESPACES[*]}"
		return
	fi
	start_bird
	log "up: ${NAMESPACES[*]}"
}

# prefix_list N FIRST_OCTET: N /24s counting up from FIRST_OCTET.0.0.0, as BIRD static routes.
prefix_list() {
	awk -v n="$1" -v o="$2" 'BEGIN { for (i = 0; i < n; i++)
		printf "route %d.%d.%d.0/24 blackhole;\n", o + int(i / 65536), int(i / 256) % 256, i % 256 }'
}

# start_bird runs BIRD 2 in lab-aws as the AWS side of all three BGP sessions.
start_bird() {
	prefix_list "${LAB_PREFIXES:-0}" 20 >"$LAB_STATE/bird-scale.conf"
	# 998 + vpc + extra: exactly the 1,000 routes a VGW may send on tunnel 1.
	prefix_list 998 100 >"$LAB_STATE/bird-flood.conf"
	sed -e "s|@LAB_STATE@|$LAB_STATE|g" "$HERE/bird-aws.conf" >"$LAB_STATE/bird-aws.conf"
	# The HA lab's additions (ha.sh writes them first); empty in the one-box lab.
	touch "$LAB_STATE"/bird-aws-ha{,-bfd,-kernel}.conf
	start_bg bird-aws lab-aws bird -f -c "$LAB_STATE/bird-aws.conf" -s "$LAB_STATE/bird-aws.ctl" -P "$LAB_STATE/bird-aws.pidfile"
	wait_for "BIRD to answer" 10 birdc -s "$LAB_STATE/bird-aws.ctl" show status ||
		{ cat "$LAB_STATE/logs/bird-aws.log" >&2; return 1; }
}

bgp_up() {
	[[ $(birdc -s "$LAB_STATE/bird-aws.ctl" show protocols | grep -c 'Established') == "$1" ]]
}

cmd_wait_bgp() {
	if is_ha; then
		wait_for "six BGP sessions Established in BIRD" 30 bgp_up 6
		log "BGP: aws_t1, aws_t2, aws_dx (lab-cgw), aws_t3, aws_t4, aws_dx2 (lab-cgw2) Established"
		return
	fi
	wait_for "three BGP sessions Established in BIRD" 30 bgp_up 3
	log "BGP: aws_t1, aws_t2, aws_dx Established"
}

cmd_start_cgwd() {
	start_bg cgwd lab-cgw "$BIN/cgwd" run -c "$LAB_STATE/cgwd.yaml"
	wait_for "cgwd to answer on its control socket" 10 "$BIN/cgwd" status -s "$LAB_STATE/cgwd.sock" || { cat "$LAB_STATE/logs/cgwd.log" >&2; return 1; }
	log "cgwd running, pid $(cat "$LAB_STATE/pids/cgwd.pid")"
}

tunnels_up() { # tunnels_up [SOCKET]
	local n
	n=$("$BIN/cgwd" status -s "${1:-$LAB_STATE/cgwd.sock}" --json | jq '[.tunnels[] | select(.state == "up")] | length')
	[[ $n == 2 ]]
}

cmd_wait_tunnels() {
	wait_for "both tunnels up" 20 tunnels_up
	log "both tunnels up"
	if is_ha; then
		wait_for "both tunnels of lab-cgw2 up" 20 tunnels_up "$HA_SOCK2"
		log "both tunnels of lab-cgw2 up"
	fi
}

cmd_stop_cgwd() {
	kill_pidfile "$LAB_STATE/pids/cgwd.pid"
}

cmd_down() {
	local f
	if [[ -d $LAB_STATE/pids ]]; then
		for f in "$LAB_STATE"/pids/*.pid; do
			[[ -e $f ]] && kill_pidfile "$f"
		done
	fi
	LAB_STATE=$LAB_STATE "$HERE/ipsec.sh" down
	for ns in "${NAMESPACES[@]}" "${HA_NAMESPACES[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	for f in "${WG_SOCKETS[@]}" "${HA_KEYS[@]}"; do
		rm -f "/var/run/wireguard/$f.sock"
	done
	rm -rf "$LAB_STATE"
}

case ${1:-} in
up) cmd_up ;;
dx-cut) dx_cut ;;
dx-restore) dx_restore ;;
dx-link) dx_link "${2:-}" "${3:-}" ;;
start-cgwd) cmd_start_cgwd ;;
wait-tunnels) cmd_wait_tunnels ;;
wait-bgp) cmd_wait_bgp ;;
stop-cgwd) cmd_stop_cgwd ;;
start-cgwd2) cmd_start_cgwd2 ;;
stop-cgwd2) kill_pidfile "$LAB_STATE/pids/cgwd2.pid" ;;
wait-core) cmd_wait_core ;;
show-ha) cmd_show_ha ;;
box-isolate) box_isolate "${2:-}" ;;
box-unisolate) box_unisolate "${2:-}" ;;
box-aws-cut) box_aws_cut "${2:-}" ;;
box-aws-restore) box_aws_restore "${2:-}" ;;
down) cmd_down; log "down" ;;
*) echo "usage: $0 up|start-cgwd|wait-tunnels|wait-bgp|stop-cgwd|dx-cut|dx-restore|dx-link cgw|aws down|up|start-cgwd2|stop-cgwd2|wait-core|show-ha|box-isolate|box-unisolate|box-aws-cut|box-aws-restore 1|2|down" >&2; exit 2 ;;
esac
