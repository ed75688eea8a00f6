# cgwd: make lab (deps, build, lab up with cgwd, show it), make test, make bench.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/cgwd/cgwd/pkg/version.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# promtool (Debian package prometheus) checks deploy/prometheus in make lint.
DEB_PACKAGES_OPS := prometheus
LAB := flock -o /run/cgwd-lab.lock test/netns/lab.sh
DEB_PACKAGES := iproute2 iputils-ping wireguard-tools bird2 frr iperf3 nftables jq curl ca-certificates git make bc strongswan-charon strongswan-swanctl strongswan-pki libcharon-extra-plugins libstrongswan-extra-plugins
# TUNNEL=ipsec makes `make lab` use IPsec tunnels with strongSwan as the AWS side.
# AWS=ikev2 (with TUNNEL=ipsec) narrows strongSwan to IKEv2 with DPD restart; by
# default it has AWS's default tunnel options (IKEv1 and IKEv2, DPD clear, ...).
TUNNEL ?= wireguard
export TUNNEL
# HA=1 makes `make lab` build the two-box lab (test/netns/ha.sh): a core router
# (FRR), a shared LAN and a second cgwd box, lab-cgw2.
HA ?=
export HA

.PHONY: all build deps lab lab-down test lint unit integration bench clean image man completion test-system

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/cgwd ./cmd/cgwd
	$(GO) build -trimpath -o $(BIN)/wireguard-go golang.zx2c4.com/wireguard
	@[ -x $(BIN)/gobgp ] || GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/osrg/gobgp/v3/cmd/gobgp@v3.37.0

# man writes the man page cgwd.1 and completion the bash and zsh scripts
# (bin/cgwd.bash, bin/_cgwd), all made from the help the CLI prints.
man: build
	$(BIN)/cgwd man > cgwd.1

completion: build
	$(BIN)/cgwd completion bash > $(BIN)/cgwd.bash
	$(BIN)/cgwd completion zsh > $(BIN)/_cgwd

# deps installs what a fresh Debian machine lacks (as root).
deps:
	@missing=""; for p in $(DEB_PACKAGES) $(DEB_PACKAGES_OPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v $(GO) >/dev/null || { echo "Go is missing: install Go 1.26 (https://go.dev/dl) into /usr/local/go"; exit 1; }
	$(GO) mod download

# lab brings up the namespace lab with cgwd and shows it working; make lab-down removes it.
ifeq ($(HA),1)
lab: deps build
	$(LAB) up
	$(LAB) start-cgwd
	$(LAB) start-cgwd2
	$(LAB) wait-tunnels
	$(LAB) wait-bgp
	$(LAB) wait-core
	@echo; $(LAB) show-ha
	@echo; echo 'HA lab is up; logs: /run/cgwd-lab/logs/ (cgwd.log, cgwd2.log, frr-core-*.log); remove it with: make lab-down'
else
lab: deps build
	$(LAB) up
	$(LAB) start-cgwd
	$(LAB) wait-tunnels
	$(LAB) wait-bgp
	@echo; echo '== cgwd status'; $(BIN)/cgwd status -s /run/cgwd-lab/cgwd.sock
	@echo; if [ "$(TUNNEL)" = ipsec ]; then echo '== swanctl --list-sas (strongSwan, the AWS side of tunnel 1)'; test/netns/ipsec.sh swanctl 1 --list-sas; \
	else echo '== wg show cgw-t1 (stock wg against cgwd)'; ip netns exec lab-cgw wg show cgw-t1; fi
	@echo; echo '== gobgp neighbor (stock gobgp CLI against cgwd)'; $(BIN)/gobgp --target unix:///run/cgwd-lab/gobgp.sock neighbor
	@echo; echo '== birdc show protocols (BIRD, the AWS side)'; birdc -s /run/cgwd-lab/bird-aws.ctl show protocols
	@echo; echo '== routes cgwd programmed in lab-cgw (proto 200), their nexthop groups, and where packets go'
	@ip netns exec lab-cgw ip route show proto 200; ip netns exec lab-cgw ip nexthop show; ip netns exec lab-cgw ip route get 10.200.0.10
	@echo; echo '== ping lab-onprem -> lab-vpc'; ip netns exec lab-onprem ping -c 3 -i 0.2 10.200.0.10
	@echo; echo 'lab is up; cgwd log: /run/cgwd-lab/logs/cgwd.log; remove it with: make lab-down'
endif

lab-down:
	$(LAB) down

# image builds cgwd's container image from a static binary (FROM scratch, no
# registry) with podman, or docker: deploy/container/image.sh.
IMAGE ?= localhost/cgwd:latest
image:
	VERSION=$(VERSION) deploy/container/image.sh $(IMAGE)

# test-system runs cgwd's image and its systemd unit for real (as root):
# TestContainerLab (podman, runc) and TestSystemdUnitLab, which boots a Debian
# 12 root filesystem with systemd-nspawn; test/netns/sysroot.sh builds it once
# from Debian's mirrors (about 2 minutes) into /var/cache/cgwd. make test runs
# both tests too, skipping what is not installed or built.
DEB_PACKAGES_SYSTEM := podman runc mmdebstrap systemd-container
test-system: build
	$(MAKE) deps DEB_PACKAGES='$(DEB_PACKAGES_SYSTEM)' DEB_PACKAGES_OPS=
	test/netns/sysroot.sh
	$(GO) test -count=1 -timeout 15m -v -run 'TestContainerLab|TestSystemdUnitLab' ./test/netns/

test: deps build lint unit integration

lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@if command -v promtool >/dev/null; then \
		cd deploy/prometheus && promtool check config prometheus.yml && promtool check rules cgwd-rules.yml && promtool test rules cgwd-rules.test.yml; \
	else echo "promtool not installed (Debian package prometheus): skipping deploy/prometheus checks"; fi

unit:
	$(GO) test -count=1 -race $$($(GO) list ./... | grep -v '/test/netns$$')
	$(GO) test -count=1 -run 'TestGobgpBestPath' ./pkg/bgp/ # skipped under -race: several gobgp servers in one process

integration: build
	$(GO) test -count=1 -timeout 30m -v ./test/netns/

bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
	flock -o /run/cgwd-lab.lock test/netns/bench.sh
	flock -o /run/cgwd-lab.lock test/netns/bench-failover.sh
	flock -o /run/cgwd-lab.lock test/netns/bench-routes.sh
	flock -o /run/cgwd-lab.lock test/netns/bench-ha.sh # box failures in the two-box lab
	test/netns/bench-ipsec.sh # takes the lab lock itself (its Go test part takes it too)
	test/netns/bench-ikeflood.sh # takes the lab lock itself

clean:
	rm -rf $(BIN) cgwd.1
