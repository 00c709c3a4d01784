#!/usr/bin/env bash
# Builds the Debian package of rvs: target/deb/rvs_VERSION_ARCH.deb, with rvsd, rvsadm,
# rvsip and rvs-agent in /usr/sbin, their systemd units, sample configurations under
# /etc/rvs (conffiles), man pages and bash/zsh/fish completions generated from the clap
# definitions (xtask), and the documentation. Nothing is enabled or started on install.
#
#   bash scripts/package.sh        # prints the path of the .deb on its last line
#
# Needs what scripts/setup.sh installs (DPDK, dpkg-dev for dpkg-shlibdeps).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'package: %s\n' "$*" >&2; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
out=target/deb
stage="$out/rvs_${version}_${arch}"
deb="$out/rvs_${version}_${arch}.deb"
shlib_dir=$(mktemp -d)
cleanup() { rm -rf "$stage" "$shlib_dir"; }
trap cleanup EXIT

# The demo's release build (scripts/demo.sh: rvsd, rvs-cli, rvs-e2e) plus rvs-agent and
# xtask: the same package set plus two, and the workspace's features are chosen so that
# both sets unify alike, so after the demo only rvs-agent and xtask are compiled.
say "building (release)"
cargo build --release -q -p rvsd -p rvs-cli -p rvs-e2e -p rvs-agent -p xtask --bins

rm -rf "$stage" "$deb"
mkdir -p "$stage/DEBIAN"
say "staging $stage"

# Binaries, without their debug information (the release profile keeps line tables).
install -d "$stage/usr/sbin"
for b in rvsd rvsadm rvsip rvs-agent; do
    install -m 0755 "target/release/$b" "$stage/usr/sbin/$b"
    strip --strip-debug "$stage/usr/sbin/$b"
done

# systemd units; the agent's DAEMON_ARGS.
install -D -m 0644 packaging/systemd/rvsd.service "$stage/lib/systemd/system/rvsd.service"
install -D -m 0644 packaging/systemd/rvs-agent.service "$stage/lib/systemd/system/rvs-agent.service"
install -D -m 0644 packaging/default/rvs-agent "$stage/etc/default/rvs-agent"

# Sample configurations: rvsd's reference two-arm layout and a keepalived.conf for the
# MASTER of a FullNAT pair on the same kind of ports.
# Not readable by every user: rvsd.toml's [sync] key, keepalived.conf's auth_pass.
install -D -m 0640 dpdk-conf/production.toml "$stage/etc/rvs/rvsd.toml"
install -D -m 0640 crates/agent/tests/configs/dpvs-fnat-master.conf "$stage/etc/rvs/keepalived.conf"

# Documentation and more examples.
doc="$stage/usr/share/doc/rvs"
install -d "$doc/examples"
install -m 0644 README.md docs/OPERATIONS.md docs/CONFIG.md "$doc/"
[ -f docs/DEPLOY.md ] && install -m 0644 docs/DEPLOY.md "$doc/"
install -m 0644 dpdk-conf/demo.toml "$doc/examples/rvsd-demo.toml"
install -m 0644 crates/agent/tests/configs/dpvs-fnat-backup.conf "$doc/examples/keepalived-backup.conf"
install -m 0644 crates/agent/README.md "$doc/README.rvs-agent.md"
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: rvs"
    echo
    echo "Files: *"
    echo "License: Apache-2.0"
    echo " On Debian systems, the full text of the Apache License 2.0 is in"
    echo " /usr/share/common-licenses/Apache-2.0."
} >"$doc/copyright"

# Man pages (section 8) and completions, from the binaries' own clap definitions.
target/release/xtask dist "$stage" >/dev/null
gzip -9n "$stage"/usr/share/man/man8/*.8

# Dependencies: the shared libraries the binaries link (DPDK 22.11's librte-*, libnuma,
# ...), as dpkg-shlibdeps maps them to packages; plus the DPDK drivers rvsd loads at run
# time (EAL plugins, not linked, so invisible to dpkg-shlibdeps): the mempool ring every
# mbuf pool needs and the TAP PMD of the kernel twins. Recommended: dpdk (dpdk-devbind,
# and it recommends the NIC PMDs), af_packet and pcap PMDs (the demo's NICs, capture).
mkdir -p "$shlib_dir/debian"
printf 'Source: rvs\n\nPackage: rvs\nArchitecture: any\n' >"$shlib_dir/debian/control"
bins=()
for b in rvsd rvsadm rvsip rvs-agent; do bins+=("$PWD/$stage/usr/sbin/$b"); done
if ! substvars=$(cd "$shlib_dir" && dpkg-shlibdeps -O "${bins[@]}" 2>"$shlib_dir/err"); then
    cat "$shlib_dir/err" >&2
    say "error: dpkg-shlibdeps failed"
    exit 1
fi
shlibs=$(sed -n 's/^shlibs:Depends=//p' <<<"$substvars")
[ -n "$shlibs" ] || { say "error: dpkg-shlibdeps found no dependencies"; exit 1; }

cat >"$stage/DEBIAN/control" <<EOF
Package: rvs
Version: $version
Architecture: $arch
Maintainer: rvs developers <rvs@example.invalid>
Section: net
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $shlibs, librte-mempool-ring23, librte-net-tap23
Recommends: dpdk, librte-net-af-packet23, librte-net-pcap23
Suggests: prometheus
Homepage: https://example.invalid/rvs
Description: FullNAT layer-4 load balancer on DPDK (rvsd, rvsadm, rvsip, rvs-agent)
 rvs is a userspace FullNAT load balancer: rvsd owns dedicated NICs through DPDK and
 forwards client connections for virtual services to real servers from per-core
 run-to-completion workers. rvsadm and rvsip administer it with ipvsadm's and
 dpip's syntax; rvs-agent runs VRRP and health checks from a keepalived.conf.
 .
 The systemd units rvsd.service and rvs-agent.service are installed, not enabled.
EOF
cat >"$stage/DEBIAN/conffiles" <<'EOF'
/etc/rvs/rvsd.toml
/etc/rvs/keepalived.conf
/etc/default/rvs-agent
EOF
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
say "built $deb ($(du -h "$deb" | cut -f1))"
echo "$deb"
