#!/usr/bin/env bash
# Builds the .deb (scripts/package.sh), installs it with dpkg -i, and checks the installed
# package as an operator would meet it: each binary's --version, rvsd --check-config on the
# sample rvsd.toml, rvs-agent -t on the sample keepalived.conf, the man pages, the
# completions, the conffiles, `systemd-analyze verify` on the units (where systemd-analyze
# exists); then purges it and checks that nothing it installed is left. Run as root (CI
# runs it from scripts/test.sh). Idempotent: a package left installed by an interrupted run
# is purged first, and the package is purged on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "test-package: run as root (dpkg -i)" >&2
    exit 1
fi

bash scripts/setup.sh >/dev/null # dpkg-dev, man-db, DPDK

say() { printf 'test-package: %s\n' "$*"; }
fail() {
    printf 'test-package: FAIL: %s\n' "$*" >&2
    exit 1
}

purge_if_there() {
    if dpkg-query -W -f='${Status}' rvs 2>/dev/null | grep -Eq 'installed|config-files|unpacked|half'; then
        dpkg --purge rvs >/dev/null 2>&1 || true
    fi
}
tmp=$(mktemp -d)
trap 'purge_if_there; rm -rf "$tmp"' EXIT
purge_if_there

start=$(date +%s)
deb=$(bash scripts/package.sh | tail -n1)
[ -f "$deb" ] || fail "scripts/package.sh made no package"
built=$(date +%s)
say "built $deb in $((built - start)) s"

dpkg-deb --info "$deb" | sed -n '/Depends:/p;/Recommends:/p'
dpkg -i "$deb" >"$tmp/dpkg-i.log" 2>&1 || {
    cat "$tmp/dpkg-i.log" >&2
    fail "dpkg -i $deb"
}
dpkg -L rvs | grep -v '^/\.$' | sort >"$tmp/files"

version=$(dpkg-query -W -f='${Version}' rvs)
for b in rvsd rvsadm rvsip rvs-agent; do
    [ "$(command -v "$b")" = "/usr/sbin/$b" ] || fail "$b is not /usr/sbin/$b on PATH"
    got=$("$b" --version)
    [ "$got" = "$b $version" ] || fail "$b --version said '$got', not '$b $version'"
done
say "--version: rvsd, rvsadm, rvsip, rvs-agent $version"

# The sample rvsd.toml describes a machine with two PCI NICs: the file is checked, not
# this host (which has no such NICs).
/usr/sbin/rvsd --check-config /etc/rvs/rvsd.toml --other-host || fail "rvsd --check-config /etc/rvs/rvsd.toml"
/usr/sbin/rvs-agent -t -f /etc/rvs/keepalived.conf 2>"$tmp/agent-t.log" || {
    cat "$tmp/agent-t.log" >&2
    fail "rvs-agent -t -f /etc/rvs/keepalived.conf"
}
tail -n1 "$tmp/agent-t.log"
grep -q '^DAEMON_ARGS="-f /etc/rvs/keepalived.conf"' /etc/default/rvs-agent || fail "/etc/default/rvs-agent"

conffiles=$(dpkg-query -W -f='${Conffiles}\n' rvs | awk 'NF {print $1}' | sort | tr '\n' ' ')
[ "$conffiles" = "/etc/default/rvs-agent /etc/rvs/keepalived.conf /etc/rvs/rvsd.toml " ] ||
    fail "conffiles: $conffiles"
say "conffiles: $conffiles"
for f in /etc/rvs/rvsd.toml /etc/rvs/keepalived.conf; do
    [ "$(stat -c %a "$f")" = 640 ] || fail "$f is mode $(stat -c %a "$f"), not 640 (it holds secrets)"
done

# Man pages: found by man, rendered without groff warnings, naming the options.
for b in rvsd rvsadm rvsip rvs-agent; do
    MANPAGER=cat MANWIDTH=80 man --warnings 8 "$b" >"$tmp/$b.man" 2>"$tmp/$b.man.err" || fail "man 8 $b"
    [ ! -s "$tmp/$b.man.err" ] || {
        cat "$tmp/$b.man.err" >&2
        fail "man 8 $b: warnings"
    }
    grep -q '^NAME' "$tmp/$b.man" && grep -q '^OPTIONS' "$tmp/$b.man" || fail "man 8 $b: no NAME/OPTIONS"
done
grep -q -- '--dont-fork' "$tmp/rvs-agent.man" || fail "man rvs-agent lacks --dont-fork"
grep -q -- '--check-config' "$tmp/rvsd.man" || fail "man rvsd lacks --check-config"
say "man 8 rvsd rvsadm rvsip rvs-agent: rendered, no warnings"

# Completions: bash's are valid bash and complete an option.
for b in rvsd rvsadm rvsip rvs-agent; do
    for f in "/usr/share/bash-completion/completions/$b" "/usr/share/zsh/vendor-completions/_$b" \
        "/usr/share/fish/vendor_completions.d/$b.fish"; do
        [ -s "$f" ] || fail "missing $f"
    done
    bash -n "/usr/share/bash-completion/completions/$b" || fail "bash completion of $b"
done
words=$(bash -c 'source /usr/share/bash-completion/completions/rvs-agent
    COMP_WORDS=(rvs-agent --dont-f); COMP_CWORD=1; COMP_LINE="rvs-agent --dont-f"; COMP_POINT=${#COMP_LINE}
    fn=$(complete -p rvs-agent | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
    "$fn" rvs-agent --dont-f rvs-agent; echo "${COMPREPLY[*]}"')
[ "$words" = "--dont-fork" ] || fail "bash completion of 'rvs-agent --dont-f' gave '$words'"
say "completions: bash (checked), zsh, fish"

if command -v systemd-analyze >/dev/null 2>&1; then
    # Without systemd as PID 1 the man: and file: links cannot all be followed; what is
    # checked is the units' syntax, their directives and their executables.
    SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
        /lib/systemd/system/rvsd.service /lib/systemd/system/rvs-agent.service 2>"$tmp/verify.log" || {
        cat "$tmp/verify.log" >&2
        fail "systemd-analyze verify"
    }
    if [ -s "$tmp/verify.log" ]; then
        cat "$tmp/verify.log" >&2
        fail "systemd-analyze verify: warnings"
    fi
    say "systemd-analyze verify: rvsd.service rvs-agent.service clean"
else
    say "systemd-analyze not installed: units not verified"
fi

dpkg --purge rvs >"$tmp/purge.log" 2>&1 || {
    cat "$tmp/purge.log" >&2
    fail "dpkg --purge rvs"
}
if dpkg-query -W -f='${Status}' rvs 2>/dev/null | grep -q .; then
    status=$(dpkg-query -W -f='${Status}' rvs)
    [ "$status" = "unknown ok not-installed" ] || fail "after purge dpkg says: $status"
fi
left=()
while read -r f; do
    # Directories the package shares with the system (/usr, /etc/default, ...) stay.
    if [ -e "$f" ] && ! { [ -d "$f" ] && [ "$(dpkg -S "$f" 2>/dev/null)" != "" ]; }; then
        left+=("$f")
    fi
done <"$tmp/files"
for f in /etc/rvs /usr/share/doc/rvs /etc/default/rvs-agent; do
    [ -e "$f" ] && left+=("$f")
done
[ "${#left[@]}" -eq 0 ] || fail "left after purge: ${left[*]}"
say "purged: none of its $(wc -l <"$tmp/files") paths left (the system group 'rvs' stays, as Debian policy wants)"
say "ok in $(($(date +%s) - start)) s ($((built - start)) s building)"
