# ha.sh: the two-box (HA) lab, sourced by lab.sh after lib.sh; HA=1 lab.sh up
# (make lab HA=1) builds it. On top of the one-box lab it adds the on-prem core
# router lab-core (FRR from Debian), the LAN switch lab-lan shared by
# lab-core and both boxes, and the second box lab-cgw2 with its own WAN
# address, its own VPN connection (two more AWS endpoints in lab-aws) and its
# own Direct Connect link through lab-dx. lab-onprem's eth0 goes to lab-core
# instead of lab-cgw. Names and addresses: test/netns/README.md "Two boxes".

HA_NAMESPACES=(lab-core lab-lan lab-cgw2)
# WireGuard keys of the second VPN connection (also its UAPI sockets' names).
HA_KEYS=(cgw-t3 cgw-t4 aws-t3 aws-t4)
HA_STATE2=$LAB_STATE/cgw2 # lab-cgw2's cgwd: config, control and gobgp sockets
HA_SOCK2=$HA_STATE2/cgwd.sock
# FRR instances run as labkit.StartFRR runs them: instance NAME (-N) with
# every file in $FRR_DIR/NAME, each daemon by PID.
FRR_DIR=$LAB_STATE/frr
FRR_DAEMONS=(zebra staticd bfdd bgpd)

is_ha() { [[ -e $LAB_STATE/ha ]]; }

# ha_links: the HA lab's namespaces and links (lab.sh up calls it right after
# making the one-box lab's namespaces, in place of lab-onprem <-> lab-cgw).
ha_links() {
	local ns pair
	for ns in "${HA_NAMESPACES[@]}"; do
		ip netns add "$ns"
		in_ns "$ns" ip link set lo up
	done
	touch "$LAB_STATE/ha"

	veth lab-onprem eth0 lab-core onprem0
	in_ns lab-core ip addr add 10.10.0.1/24 dev onprem0

	# lab-lan is the LAN switch: a bridge with a port toward each of lab-core
	# and the two boxes (lan-core, lan-cgw, lan-cgw2), and an empty nftables
	# chain (bridge lab_lan cut) where a test cuts one of them.
	in_ns lab-lan ip link add br-lan type bridge stp_state 0 forward_delay 0
	for pair in lab-core:lan-core lab-cgw:lan-cgw lab-cgw2:lan-cgw2; do
		veth "${pair%%:*}" lan0 lab-lan "${pair#*:}"
		in_ns lab-lan ip link set "${pair#*:}" master br-lan
	done
	in_ns lab-lan ip link set br-lan up
	in_ns lab-lan nft -f - <<-'EOF'
		table bridge lab_lan {
			chain cut { type filter hook forward priority 0; policy accept; }
		}
	EOF
	in_ns lab-core ip addr add 10.10.100.254/24 dev lan0
	in_ns lab-cgw ip addr add 10.10.100.1/24 dev lan0
	in_ns lab-cgw2 ip addr add 10.10.100.2/24 dev lan0
	# No route to on-prem in the boxes: cgwd installs what lab-core announces.

	# lab-cgw2's own internet link: a second port of lab-inet, which holds
	# 198.51.100.1 there too and routes 198.51.100.3 to it.
	veth lab-cgw2 wan0 lab-inet to-cgw2
	in_ns lab-inet ip addr add 198.51.100.1/32 dev to-cgw2
	in_ns lab-inet ip route add 198.51.100.3/32 dev to-cgw2
	in_ns lab-cgw2 ip addr add 198.51.100.3/24 dev wan0
	in_ns lab-cgw2 ip route add default via 198.51.100.1

	# lab-cgw2's own Direct Connect: a second cross-connect in lab-dx (bridge
	# br-dx2, ports dx-cgw2 and dx-aws2) to lab-aws's dx2. lab-dx's cut
	# chain hooks both bridges: dx_cut cuts both boxes' DX.
	veth lab-cgw2 dx0 lab-dx dx-cgw2
	veth lab-dx dx-aws2 lab-aws dx2
	in_ns lab-dx ip link add br-dx2 type bridge stp_state 0 forward_delay 0
	in_ns lab-dx ip link set dx-cgw2 master br-dx2
	in_ns lab-dx ip link set dx-aws2 master br-dx2
	in_ns lab-dx ip link set br-dx2 up
	in_ns lab-cgw2 ip addr add 169.254.254.2/30 dev dx0
	in_ns lab-aws ip addr add 169.254.254.1/30 dev dx2

	for ns in lab-core lab-cgw2; do
		in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
	done
	# ECMP (active/active) hashes on ports too, as routers do, so that flows
	# of one pair of hosts spread over both boxes.
	for ns in lab-core lab-aws; do
		in_ns "$ns" sysctl -qw net.ipv4.fib_multipath_hash_policy=1
	done
}

# ha_up: the rest of the HA lab once the one-box lab's AWS side is up: the
# second VPN connection's AWS endpoints (wireguard-go), lab-cgw2's cgwd
# config, then ha_routing.
ha_up() {
	in_ns lab-aws ip addr add 203.0.113.30/24 dev wan0
	in_ns lab-aws ip addr add 203.0.113.40/24 dev wan0
	aws_wg aws-t3 169.254.12.1/30 51822 cgw-t3
	aws_wg aws-t4 169.254.13.1/30 51823 cgw-t4
	# As for tunnel 2: each endpoint answers from its own address.
	in_ns lab-aws ip route add 198.51.100.0/24 via 203.0.113.1 src 203.0.113.30 table 103
	in_ns lab-aws ip rule add ipproto udp sport 51822 lookup 103 priority 100
	in_ns lab-aws ip route add 198.51.100.0/24 via 203.0.113.1 src 203.0.113.40 table 104
	in_ns lab-aws ip rule add ipproto udp sport 51823 lookup 104 priority 100

	mkdir -p "$HA_STATE2"
	sed -e "s|@LAB_STATE@|$LAB_STATE|g" \
		-e "s|@AWS_T3_PUB@|$(pub aws-t3)|" -e "s|@AWS_T4_PUB@|$(pub aws-t4)|" \
		"$HERE/cgwd.lab-cgw2.yaml" >"$HA_STATE2/cgwd.yaml"
	chmod 600 "$HA_STATE2/cgwd.yaml"
	ha_routing
}

# ha_routing: what both tunnel kinds share once both boxes' cgwd.yaml exist
# (ha_up writes them for WireGuard, ipsec.sh up for IPsec): the boxes' HA
# config, BIRD's extra sessions, and FRR in lab-core.
ha_routing() {
	ha_config "$LAB_STATE/cgwd.yaml" 10.10.100.1 primary
	ha_config "$HA_STATE2/cgwd.yaml" 10.10.100.2 secondary

	cat >"$LAB_STATE/bird-aws-ha-bfd.conf" <<-'EOF'
		interface "dx2" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; };
	EOF
	# Equal routes from both boxes (active/active) become one ECMP route.
	echo 'merge paths on;' >"$LAB_STATE/bird-aws-ha-kernel.conf"
	cp "$HERE/bird-aws-ha.conf" "$LAB_STATE/bird-aws-ha.conf"

	start_frr lab-core core "$HERE/frr-core.conf"
}

# ha_config FILE LAN_ADDRESS ROLE: a box's config in the HA lab: no static
# prefixes (lab-core announces them), cgwd.ha.yaml's lan: and ha: appended.
ha_config() {
	local f=$1
	sed -i '/^prefixes: /d' "$f"
	sed -e "s|@LAN_LOCAL@|$2|" -e "s|@HA_ROLE@|$3|" "$HERE/cgwd.ha.yaml" >>"$f"
	grep -q '^prefixes: ' "$f" && { log "$f: could not remove the static prefixes"; return 1; }
	return 0
}

# Box failures (bench-ha.sh, and labkit's Box.Isolate and Box.CutAWS through
# lab.sh box-*). box_ns N: box N's namespace.
box_ns() {
	case $1 in
	1) echo lab-cgw ;;
	2) echo lab-cgw2 ;;
	*) echo "box: want 1 or 2, got '$1'" >&2; return 2 ;;
	esac
}

# box_isolate N: power loss of box N: every packet into, out of and through
# its namespace dropped (IPv4, IPv6, ARP; before routing and on output), in
# one nftables transaction; its links keep carrier. box_unisolate N undoes it.
box_isolate() {
	local ns
	ns=$(box_ns "$1")
	in_ns "$ns" nft -f - <<-'EOF'
		table inet lab_power {
			chain pre { type filter hook prerouting priority -500; policy drop; }
			chain out { type filter hook output priority -500; policy drop; }
		}
		table arp lab_power {
			chain in { type filter hook input priority -500; policy drop; }
			chain out { type filter hook output priority -500; policy drop; }
		}
	EOF
}
box_unisolate() {
	local ns
	ns=$(box_ns "$1")
	in_ns "$ns" nft 'delete table inet lab_power; delete table arp lab_power'
}

# box_aws_cut N: box N loses every AWS path and keeps its LAN: its DX
# cross-connect (lab-dx) and its internet link (lab-inet) drop everything,
# both ways, one nftables transaction each. box_aws_restore N undoes it.
box_aws_cut() {
	local dx=dx-cgw inet=to-cgw
	box_ns "$1" >/dev/null
	if [[ $1 == 2 ]]; then dx=dx-cgw2 inet=to-cgw2; fi
	in_ns lab-dx nft "add table bridge lab_boxcut; add chain bridge lab_boxcut cut { type filter hook forward priority -10; }; add rule bridge lab_boxcut cut iifname \"$dx\" drop; add rule bridge lab_boxcut cut oifname \"$dx\" drop"
	in_ns lab-inet nft "add table inet lab_boxcut; add chain inet lab_boxcut cut { type filter hook forward priority -10; }; add rule inet lab_boxcut cut iifname \"$inet\" drop; add rule inet lab_boxcut cut oifname \"$inet\" drop"
}
box_aws_restore() {
	in_ns lab-inet nft delete table inet lab_boxcut
	in_ns lab-dx nft delete table bridge lab_boxcut
}

# vtysh_ NAME ARGS...: vtysh against FRR instance NAME.
vtysh_() {
	local name=$1
	shift
	vtysh -N "$name" --vty_socket "$FRR_DIR" --config_dir "$FRR_DIR" "$@"
}

# start_frr NS NAME CONF: FRR's zebra, staticd, bfdd and bgpd in NS as
# instance NAME with config file CONF, in the foreground by PID; returns once
# each answers on its vty.
start_frr() {
	local ns=$1 name=$2 dir=$FRR_DIR/$2 d args
	mkdir -p "$dir"
	cp "$3" "$dir/frr.conf"
	: >"$dir/vtysh.conf"
	chown frr:frr "$dir" "$dir/frr.conf" # the daemons drop to user frr
	for d in "${FRR_DAEMONS[@]}"; do
		args=(-N "$name" -f "$dir/frr.conf" -P 0 --vty_socket "$dir" -z "$dir/zserv.api"
			-i "$dir/$d.pid" --log "file:$dir/$d.log")
		[[ $d == bfdd ]] && args+=(--bfdctl "$dir/bfdd.sock")
		start_bg "frr-$name-$d" "$ns" "/usr/lib/frr/$d" "${args[@]}"
		wait_for "FRR $name's $d" 10 vtysh_ "$name" -d "$d" -c "show version" ||
			{ cat "$LAB_STATE/logs/frr-$name-$d.log" >&2; return 1; }
	done
}

cmd_start_cgwd2() {
	start_bg cgwd2 lab-cgw2 "$BIN/cgwd" run -c "$HA_STATE2/cgwd.yaml"
	wait_for "lab-cgw2's cgwd to answer on its control socket" 10 "$BIN/cgwd" status -s "$HA_SOCK2" ||
		{ cat "$LAB_STATE/logs/cgwd2.log" >&2; return 1; }
	log "cgwd running in lab-cgw2, pid $(cat "$LAB_STATE/pids/cgwd2.pid")"
}

# core_up N: lab-core's FRR has N BGP sessions Established, each with
# prefixes received and sent.
core_up() {
	[[ $(vtysh_ core -c 'show bgp ipv4 unicast summary json' |
		jq '[.peers[] | select(.state == "Established" and .pfxRcd > 0 and .pfxSnt > 0)] | length') == "$1" ]]
}

cmd_wait_core() {
	wait_for "lab-core's sessions with both boxes Established, routes both ways" 30 core_up 2
	log "BGP: lab-core with lab-cgw (10.10.100.1) and lab-cgw2 (10.10.100.2) Established, routes both ways"
}

# dx_packets NS: packets sent and received on NS's dx0.
dx_packets() { in_ns "$1" cat /sys/class/net/dx0/statistics/{tx,rx}_packets | paste -sd+ | bc; }

# cmd_show_ha: what make lab HA=1 shows once both boxes are up.
cmd_show_ha() {
	echo '== cgwd status (lab-cgw, box 1)'
	"$BIN/cgwd" status -s "$LAB_STATE/cgwd.sock"
	echo
	echo '== cgwd status (lab-cgw2, box 2)'
	"$BIN/cgwd" status -s "$HA_SOCK2"
	echo
	echo '== vtysh: show bgp summary (FRR in lab-core, the on-prem core router)'
	vtysh_ core -c 'show bgp ipv4 unicast summary'
	echo '== vtysh: show ip bgp 10.200.0.0/16 (the core has it from both boxes; the best path wins)'
	vtysh_ core -c 'show ip bgp 10.200.0.0/16'
	echo
	echo '== birdc show protocols (BIRD, the AWS side)'
	birdc -s "$LAB_STATE/bird-aws.ctl" show protocols
	echo '== birdc show route for 10.10.0.10 (return traffic from AWS: the best path is starred)'
	birdc -s "$LAB_STATE/bird-aws.ctl" show route for 10.10.0.10
	echo
	echo '== where packets go: lab-core to the VPC, lab-aws back to on-prem'
	in_ns lab-core ip route get 10.200.0.10
	in_ns lab-aws ip route get 10.10.0.10
	echo
	local b1 b2
	b1=$(dx_packets lab-cgw) b2=$(dx_packets lab-cgw2)
	echo "== ping through each box's tunnels (AWS's inside addresses: tunnels 1 and 2 from lab-cgw, 3 and 4 from lab-cgw2)"
	local peer
	for peer in lab-cgw:169.254.10.1 lab-cgw:169.254.11.1 lab-cgw2:169.254.12.1 lab-cgw2:169.254.13.1; do
		echo "${peer%%:*} -> ${peer#*:}: $(in_ns "${peer%%:*}" ping -c 3 -i 0.2 -W 1 -q "${peer#*:}" | grep 'packets transmitted')"
	done
	echo
	echo '== ping lab-onprem -> lab-vpc (100 packets)'
	in_ns lab-onprem ping -c 100 -i 0.01 -q 10.200.0.10
	echo "packets on dx0 during the ping (both directions): lab-cgw $(($(dx_packets lab-cgw) - b1)), lab-cgw2 $(($(dx_packets lab-cgw2) - b2))"
}
