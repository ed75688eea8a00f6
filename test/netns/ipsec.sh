#!/usr/bin/env bash
# ipsec.sh: the IPsec variant of the lab (lab.sh up with TUNNEL=ipsec calls
# `ipsec.sh up` after the common namespaces exist). Each AWS tunnel endpoint
# is strongSwan (charon with kernel-libipsec) in its own namespace:
#
#   lab-aws-t1: wan0 203.0.113.10/24 (to lab-inet), ipsec0 (libipsec), inner0 (to lab-aws aws-t1)
#   lab-aws-t2: wan0 203.0.113.20/24 (to lab-inet), ipsec0 (libipsec), inner0 (to lab-aws aws-t2)
#   lab-aws:    aws-t1 169.254.10.1/30, aws-t2 169.254.11.1/30 (veths to the endpoints)
#
# In the HA lab (HA=1, test/netns/ha.sh) the second box's VPN connection has
# two more, lab-aws-t3 (203.0.113.30, aws-t3 169.254.12.1/30) and lab-aws-t4
# (203.0.113.40, aws-t4 169.254.13.1/30), toward lab-cgw2 (198.51.100.3);
# `up` also writes lab-cgw2's cgwd.yaml then.
#
# Commands (as root, holding /run/cgwd-lab.lock like every lab user):
#   ipsec.sh up                 endpoints, PSKs, strongSwan configs, charons, cgwd.yaml
#   ipsec.sh configure N        rewrite and reload tunnel N's swanctl.conf from the env below
#   ipsec.sh start-charon N     start charon for tunnel N (1 or 2; 3 or 4 in the HA lab) and load its config
#   ipsec.sh stop-charon N      stop it (by PID)
#   ipsec.sh swanctl N ARGS...  run swanctl against tunnel N's charon
#   ipsec.sh down               stop the charons, delete lab-aws-t1 and lab-aws-t2
#
# Environment (defaults are AWS's default tunnel options): AWS_IKE_PROPOSALS,
# AWS_ESP_PROPOSALS (AWS's lists, modp2048 first, the weak groups 2, 5, 22 last),
# AWS_START_ACTION (none, AWS's "add": cgwd initiates; start: AWS initiates),
# AWS_IKE_LIFETIME (28800s), AWS_CHILD_LIFETIME (3600s), AWS_REKEY_MARGIN (270,
# at most a tenth of a lifetime) and AWS_REKEY_FUZZ (100 percent): charon
# rekeys margin + up to fuzz% of it before a lifetime ends, as AWS does;
# AWS_DPD_ACTION (clear, AWS's default; restart),
# AWS_IKE_VERSION (charon's version: 0, AWS's default, IKEv1 and IKEv2; 2: IKEv2 only; 1: IKEv1 only),
# AWS=ikev2 is the narrower profile the lab used before (version 2, DPD restart),
# AWS_FRAGMENT_SIZE (charon's largest IKE datagram before it fragments, RFC 7383; read at start-charon),
# AWS_PSK_OVERRIDE (give strongSwan another PSK than cgwd's), CGWD_IPSEC_OPTS
# (extra YAML keys for every tunnel's ipsec: block in cgwd.yaml, ";"-separated;
# with a cert_file among them the block has no psk_file), CGWD_IPSEC_OPTS_T1 and
# CGWD_IPSEC_OPTS_T2 (more keys for cgw-t1's or cgw-t2's block only).
# AWS_AUTH=cert authenticates with certificates (strongswan/swanctl-cert.conf):
# AWS_CERT and AWS_KEY are strongSwan's certificate and key, AWS_CAS the CA
# certificates it holds (space-separated), AWS_CGW_ID the DN it expects of cgwd.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_STATE=${LAB_STATE:-/run/cgwd-lab}
SS=$HERE/strongswan
# Tunnels 1 and 2 go to lab-cgw; 3 and 4 (HA lab only) to lab-cgw2.
ENDPOINT_NS=(lab-aws-t1 lab-aws-t2 lab-aws-t3 lab-aws-t4)
AWS_OUT=(203.0.113.10 203.0.113.20 203.0.113.30 203.0.113.40)
AWS_INSIDE=(169.254.10.1 169.254.11.1 169.254.12.1 169.254.13.1)
CGW_OUTSIDE=(198.51.100.2 198.51.100.2 198.51.100.3 198.51.100.3)

# AWS's default proposal lists (AEAD and non-AEAD must be separate proposals
# in strongSwan): AES128, AES256, AES128-GCM-16, AES256-GCM-16; SHA1,
# SHA2-256, SHA2-384, SHA2-512; phase 1 groups 2 and 14-24, phase 2 also 5.
# charon as responder picks by its own order, so it is AWS's with modp2048
# first and the weak groups (2, 5, 22) last.
DH1=modp2048-modp3072-modp4096-modp6144-modp8192-ecp256-ecp384-ecp521-modp2048s224-modp2048s256-modp1024-modp1024s160
DH2=modp2048-modp3072-modp4096-modp6144-modp8192-ecp256-ecp384-ecp521-modp2048s224-modp2048s256-modp1024-modp1536-modp1024s160
: "${AWS_IKE_PROPOSALS:=aes128-aes256-sha1-sha256-sha384-sha512-$DH1,aes128gcm16-aes256gcm16-prfsha1-prfsha256-prfsha384-prfsha512-$DH1}"
: "${AWS_ESP_PROPOSALS:=aes128-aes256-sha1-sha256-sha384-sha512-$DH2,aes128gcm16-aes256gcm16-$DH2}"
: "${AWS_START_ACTION:=none}"
if [[ ${AWS:-default} == ikev2 ]]; then
	: "${AWS_IKE_VERSION:=2}" "${AWS_DPD_ACTION:=restart}"
fi
: "${AWS_IKE_VERSION:=0}"
: "${AWS_DPD_ACTION:=clear}"
: "${AWS_REKEY_MARGIN:=270}"
: "${AWS_REKEY_FUZZ:=100}"
: "${AWS_FRAGMENT_SIZE:=1280}"
: "${AWS_IKE_LIFETIME:=28800s}"
: "${AWS_CHILD_LIFETIME:=3600s}"

log() { printf 'ipsec: %s\n' "$*" >&2; }
. "$HERE/lib.sh"

dir() { echo "$LAB_STATE/aws-t$1"; }

# tunnels: the lab's tunnel numbers (ha.sh's ha_links marks the HA lab).
tunnels() { if [[ -e $LAB_STATE/ha ]]; then echo 1 2 3 4; else echo 1 2; fi; }

# aws_times LIFETIME: charon's rekey_time, hard limit and rand_time (seconds)
# for AWS's lifetime, rekey margin and fuzz, the margin at most a tenth of
# the lifetime (the lab's short rekey tests).
aws_times() {
	local life=${1%s} margin=$AWS_REKEY_MARGIN
	((margin * 10 > life)) && margin=$((life / 10))
	echo "$((life - margin))s ${life}s $((margin * AWS_REKEY_FUZZ / 100))s"
}
uri() { echo "unix://$(dir "$1")/run/charon.vici"; }

# render N: write tunnel N's strongswan.conf and swanctl.conf.
render() {
	local n=$1 i=$(($1 - 1)) d psk tmpl
	d=$(dir "$n")
	mkdir -p "$d/run"
	chmod 700 "$d"
	psk=${AWS_PSK_OVERRIDE:-$(cat "$LAB_STATE/keys/ipsec-t$n.psk")}
	tmpl=swanctl.conf
	[ "${AWS_AUTH:-psk}" = cert ] && tmpl=swanctl-cert.conf
	certs "$n"
	# Inside charon's mount namespace $d/run is /run, which hides $LAB_STATE
	# (under /run): its strongswan.conf lives in there too.
	sed -e "s|@FRAGMENT_SIZE@|$AWS_FRAGMENT_SIZE|" "$SS/strongswan.conf" >"$d/run/strongswan.conf"
	local ike child
	read -ra ike <<<"$(aws_times "$AWS_IKE_LIFETIME")"
	read -ra child <<<"$(aws_times "$AWS_CHILD_LIFETIME")"
	(umask 077; sed -e "s|@AWS_OUTSIDE@|${AWS_OUT[$i]}|g" -e "s|@CGW_OUTSIDE@|${CGW_OUTSIDE[$i]}|g" \
		-e "s|@IKE_PROPOSALS@|$AWS_IKE_PROPOSALS|" -e "s|@ESP_PROPOSALS@|$AWS_ESP_PROPOSALS|" \
		-e "s|@START_ACTION@|$AWS_START_ACTION|" -e "s|@IKE_VERSION@|$AWS_IKE_VERSION|" -e "s|@DPD_ACTION@|$AWS_DPD_ACTION|" \
		-e "s|@IKE_REKEY@|${ike[0]}|" -e "s|@IKE_OVER@|$((${ike[1]%s} - ${ike[0]%s}))s|" -e "s|@IKE_RAND@|${ike[2]}|" \
		-e "s|@CHILD_REKEY@|${child[0]}|" -e "s|@CHILD_LIFE@|${child[1]}|" -e "s|@CHILD_RAND@|${child[2]}|" -e "s|@PSK@|$psk|" \
		-e "s|@CGW_ID@|${AWS_CGW_ID:-}|" "$SS/$tmpl" >"$d/swanctl.conf")
}

# certs N: put AWS_CERT, AWS_KEY and AWS_CAS where swanctl --file
# $(dir N)/swanctl.conf loads credentials from (or clear them).
certs() {
	local d ca
	d=$(dir "$1")
	rm -rf "$d/x509" "$d/x509ca" "$d/private"
	[ "${AWS_AUTH:-psk}" = cert ] || return 0
	mkdir -p "$d/x509" "$d/x509ca" "$d/private"
	cp "$AWS_CERT" "$d/x509/aws.pem"
	(umask 077; cp "$AWS_KEY" "$d/private/aws.key")
	for ca in ${AWS_CAS:-}; do cp "$ca" "$d/x509ca/"; done
}

cmd_swanctl() {
	local n=$1; shift
	# swanctl --file complains about credential directories we do not use.
	swanctl "$@" --uri "$(uri "$n")" 2> >(grep -v "^opening directory" >&2)
}

cmd_configure() {
	render "$1"
	cmd_swanctl "$1" --load-all --clear --noprompt --file "$(dir "$1")/swanctl.conf" >/dev/null
}

cmd_start_charon() {
	local n=$1 i=$(($1 - 1)) d ns
	d=$(dir "$n")
	ns=${ENDPOINT_NS[$i]}
	render "$n"
	rm -f "$d/run/charon.vici" "$d/run/charon.pid"
	mkdir -p "$LAB_STATE/pids" "$LAB_STATE/logs"
	# A private /run (charon's pid file and vici socket) in the namespace's
	# own mount namespace; the lock descriptors are not inherited.
	ip netns exec "$ns" sh -c 'mount --bind "$1" /run && exec env STRONGSWAN_CONF=/run/strongswan.conf /usr/lib/ipsec/charon' \
		sh "$d/run" >"$LAB_STATE/logs/charon-aws-t$n.log" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	echo $! >"$LAB_STATE/pids/charon-aws-t$n.pid"
	wait_for "charon aws-t$n vici socket" 10 test -S "$d/run/charon.vici" ||
		{ cat "$LAB_STATE/logs/charon-aws-t$n.log" "$d/run/charon.log" >&2 || true; return 1; }
	wait_for "ipsec0 in $ns" 10 ip -n "$ns" link show ipsec0
	ip -n "$ns" link set ipsec0 up
	# Everything that is not the internet or the VPC side goes into the tunnel.
	ip -n "$ns" route replace default dev ipsec0
	cmd_swanctl "$n" --load-all --noprompt --file "$d/swanctl.conf" >/dev/null
}

cmd_stop_charon() {
	kill_pidfile "$LAB_STATE/pids/charon-aws-t$1.pid"
}

cmd_up() {
	mkdir -p "$LAB_STATE/keys"
	chmod 700 "$LAB_STATE/keys"
	local n i ns
	for n in $(tunnels); do
		i=$((n - 1))
		ns=${ENDPOINT_NS[$i]}
		(umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$LAB_STATE/keys/ipsec-t$n.psk")
		ip netns add "$ns"
		in_ns "$ns" ip link set lo up
		# Outside: a /32 route in lab-inet steers the endpoint's address here.
		ip link add "to-aws-t$n" netns lab-inet type veth peer name wan0 netns "$ns"
		ip -n lab-inet link set "to-aws-t$n" up
		ip -n lab-inet addr add 203.0.113.1/32 dev "to-aws-t$n"
		ip -n lab-inet route replace "${AWS_OUT[$i]}/32" dev "to-aws-t$n"
		ip -n "$ns" link set wan0 up
		ip -n "$ns" addr add "${AWS_OUT[$i]}/24" dev wan0
		ip -n "$ns" route add 198.51.100.0/24 via 203.0.113.1 dev wan0
		# Inside: lab-aws keeps the AWS inside address (BGP peers there).
		ip link add "aws-t$n" netns lab-aws type veth peer name inner0 netns "$ns"
		ip -n lab-aws link set "aws-t$n" up
		ip -n lab-aws addr add "${AWS_INSIDE[$i]}/30" dev "aws-t$n"
		ip -n "$ns" link set inner0 up
		# An address of its own on inner0, so that ARP for the inside address
		# does not come from 203.0.113.x, which lab-aws also holds (and so ignores).
		ip -n "$ns" addr add "192.0.2.$n/32" dev inner0
		ip -n "$ns" route add "${AWS_INSIDE[$i]}/32" dev inner0
		ip -n "$ns" route add 10.200.0.0/16 via "${AWS_INSIDE[$i]}" dev inner0
		# kernel-libipsec puts 0/0 into ipsec0 through table 220 whatever
		# install_routes says; the VPC side is looked up in main first.
		ip -n "$ns" rule add priority 100 to "${AWS_INSIDE[$i]}/32" lookup main
		ip -n "$ns" rule add priority 100 to 10.200.0.0/16 lookup main
		# On AWS the endpoint that terminates IPsec also speaks BGP and BFD:
		# no hop in between. Here the endpoint namespace routes, so it hides
		# its hop from the TTL checks: TTL 1 (eBGP) is not expired, and 255
		# (single-hop BFD) still arrives as 255.
		in_ns "$ns" nft add table ip cgwdlab
		in_ns "$ns" nft add chain ip cgwdlab pre '{ type filter hook prerouting priority -150; }'
		in_ns "$ns" nft add rule ip cgwdlab pre ip ttl 1 ip ttl set 2
		in_ns "$ns" nft add chain ip cgwdlab post '{ type filter hook postrouting priority -150; }'
		in_ns "$ns" nft add rule ip cgwdlab post ip ttl 254 ip ttl set 255
		in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.inner0.proxy_arp=1
		cmd_start_charon "$n"
	done
	cgwd_yaml
	if [[ -e $LAB_STATE/ha ]]; then
		mkdir -p "$LAB_STATE/cgw2"
		cgwd_yaml "$HERE/cgwd.lab-cgw2.yaml" "$LAB_STATE/cgw2/cgwd.yaml"
	fi
	log "up: ${ENDPOINT_NS[*]:0:$(tunnels | wc -w)} (strongSwan $(charon_version))"
}

charon_version() { /usr/lib/ipsec/charon --version 2>/dev/null | head -1 || echo unknown; }

# cgwd_yaml [TEMPLATE OUT] writes cgwd.yaml (OUT) from the lab template
# (TEMPLATE, cgwd.lab.yaml by default) with IPsec tunnels in place of
# WireGuard ones: each `kind: wireguard` becomes `kind: ipsec` and the
# tunnel's wireguard: block becomes an ipsec: block.
cgwd_yaml() {
	local tmpl=${1:-$HERE/cgwd.lab.yaml} out=${2:-$LAB_STATE/cgwd.yaml}
	awk -v state="$LAB_STATE" -v common="${CGWD_IPSEC_OPTS:-}" -v t1="${CGWD_IPSEC_OPTS_T1:-}" -v t2="${CGWD_IPSEC_OPTS_T2:-}" '
		function ipsec_block(name,   n, i, parts, opts) {
			opts = common ";" (name == "cgw-t1" ? t1 : name == "cgw-t2" ? t2 : "")
			print "        ipsec:"
			if (opts !~ /cert_file:/) print "          psk_file: " state "/keys/ipsec-" substr(name, 5) ".psk"
			n = split(opts, parts, ";")
			for (i = 1; i <= n; i++) if (parts[i] != "") print "          " parts[i]
		}
		/^      - name: / { name = $3 }
		/^        kind: wireguard/ { print "        kind: ipsec"; next }
		/^        wireguard:/ { skip = 1; ipsec_block(name); next }
		skip && /^          / { next }
		{ skip = 0; print }
	' "$tmpl" | sed -e "s|@LAB_STATE@|$LAB_STATE|g" >"$out"
	chmod 600 "$out"
}

cmd_down() {
	local n
	for n in 1 2 3 4; do cmd_stop_charon "$n"; done
	for ns in "${ENDPOINT_NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

case ${1:-} in
up) cmd_up ;;
configure) cmd_configure "$2" ;;
start-charon) cmd_start_charon "$2" ;;
stop-charon) cmd_stop_charon "$2" ;;
swanctl) shift; cmd_swanctl "$@" ;;
cgwd-yaml) cgwd_yaml ;;
down) cmd_down ;;
*) echo "usage: $0 up|configure N|start-charon N|stop-charon N|swanctl N ARGS...|cgwd-yaml|down" >&2; exit 2 ;;
esac
