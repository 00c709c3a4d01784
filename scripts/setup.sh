#!/usr/bin/env bash
# Idempotent set-up of a Debian 12 machine for building, testing and demonstrating rvs.
# Installs the system packages the project needs, reserves hugepages when the kernel
# allows it (tests never depend on them: they run with --no-huge), and says what it did.
set -euo pipefail

say() { printf 'setup: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

# Everything rvs builds, tests and demonstrates with.
#  - libdpdk-dev, dpdk, dpdk-dev: DPDK 22.11 LTS headers, shared libraries, PMD plugins,
#    dpdk-testpmd and dpdk-dumpcap (the benchmark runs testpmd as its I/O ceiling)
#  - libpcap-dev: libpcap compiles `rvsip capture` filters (tcpdump's full syntax)
#  - pkg-config, libclang-dev, clang: bindgen over the DPDK headers
#  - iproute2, iputils-ping, ethtool, tcpdump, tshark, curl, python3, nftables: end-to-end
#    tests (nftables hides the af_packet NICs from the kernel, as a DPDK NIC is hidden)
#  - keepalived: a real VRRP peer for the agent's tests
#  - hping3: the spoofed-source SYN flood of the SYN proxy's end-to-end test
#  - dnsmasq-base: a real DNS server for rvs-agent's DNS_CHECK tests (run in the
#    foreground by the test; the package has no daemon or service of its own)
#  - dpkg-dev (dpkg-shlibdeps, strip) and man-db (man): scripts/package.sh builds the .deb,
#    scripts/test-package.sh installs it and opens its man pages
#  - prometheus (with promtool): a real scraper for the metrics test; its own service is
#    stopped and disabled, the test runs one on loopback with its own configuration
#  - nginx: the real servers of the PROXY protocol end-to-end test (`listen ...
#    proxy_protocol`); its own service is stopped and disabled, the test runs one per
#    real-server namespace with its own configuration
#  - wrk, haproxy: scripts/compare.sh's load generator and one of the balancers it
#    compares rvsd with (haproxy's own service is stopped and disabled)
#  - dnsperf: scripts/compare.sh's UDP load generator (DNS queries to dnsmasq on the
#    real servers through each balancer); a command-line tool, no service
#  - bird2: BGP speakers of the ECMP end-to-end test (each box announces the VIP from its
#    kernel twin to a router namespace); its own service is stopped and disabled, the test
#    runs one per namespace with its own configuration and control socket
PACKAGES=(
    libdpdk-dev dpdk dpdk-dev libpcap-dev pkg-config libclang-dev clang
    iproute2 iputils-ping ethtool tcpdump tshark curl python3 procps nftables
    keepalived hping3
    dnsmasq-base
    prometheus nginx
    wrk haproxy dnsperf bird2
    dpkg-dev man-db
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # tshark asks whether non-root users may capture; answer once, non-interactively.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # keepalived is a test peer, not a service of this machine.
    if command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl disable --now keepalived prometheus nginx haproxy bird >/dev/null 2>&1 || true
    fi
    $SUDO pkill -x keepalived 2>/dev/null || true
    $SUDO pkill -x prometheus 2>/dev/null || true
    $SUDO pkill -x haproxy 2>/dev/null || true
    $SUDO pkill -x bird 2>/dev/null || true
    say "installed ${#missing[@]} package(s)"
else
    say "all ${#PACKAGES[@]} packages already installed"
fi

if ! pkg-config --exists libdpdk; then
    say "error: pkg-config cannot find libdpdk after installation" >&2
    exit 1
fi
say "DPDK $(pkg-config --modversion libdpdk)"

# Hugepages: useful for running rvsd for real; never required by the tests.
if [ -w /proc/sys/vm/nr_hugepages ]; then
    want=512
    have=$(cat /proc/sys/vm/nr_hugepages)
    if [ "$have" -lt "$want" ]; then
        echo "$want" | $SUDO tee /proc/sys/vm/nr_hugepages >/dev/null 2>&1 || true
        have=$(cat /proc/sys/vm/nr_hugepages)
    fi
    say "hugepages (2 MiB): $have reserved"
else
    say "hugepages: /proc/sys/vm/nr_hugepages not writable, skipped"
fi
if ! mountpoint -q /dev/hugepages 2>/dev/null; then
    if $SUDO mkdir -p /dev/hugepages && $SUDO mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null; then
        say "mounted hugetlbfs on /dev/hugepages"
    else
        say "hugetlbfs not mounted (not permitted here); tests use --no-huge"
    fi
else
    say "hugetlbfs already mounted on /dev/hugepages"
fi

for tool in cargo rustc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        say "error: $tool not found; install the Rust toolchain (rustup) first" >&2
        exit 1
    fi
done
for comp in fmt clippy; do
    if ! cargo "$comp" --version >/dev/null 2>&1; then
        say "cargo $comp missing; adding the rustup component"
        rustup component add "$( [ "$comp" = fmt ] && echo rustfmt || echo clippy )"
    fi
done
say "$(cargo --version)"
say "done"
