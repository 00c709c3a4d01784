#!/usr/bin/env bash
# Regenerates the committed seed corpora (fuzz/corpus/<target>) from the fixtures:
#  - frame, wire: the frame and fnat fixture tables write their frames
#    (RVS_FUZZ_SEEDS, fuzz/src/seeds.rs), one `frame` seed per table, one `wire` seed
#    per frame;
#  - config: dpdk-conf/*.toml;
#  - keepalived: crates/agent/tests/configs (includes are not expanded by the target);
#  - ctl: hand-made protocol lines, committed as they are (one per operation and result
#    name of crates/ctl/src/proto.rs, plus the examples of its documentation);
#  - agent_wire: keepalived 2.2.7's adverts captured for crates/agent/src/vrrp/packet.rs
#    (plain and AH) and BFD control packets of crates/agent/src/bfd/packet.rs, committed
#    as they are.
# Files are named by content, so running it again adds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

corpus=$PWD/fuzz/corpus
mkdir -p "$corpus"/{frame,wire,config,keepalived,ctl,agent_wire}
RVS_FUZZ_SEEDS="$corpus" cargo test -q -p frame --test fixtures
RVS_FUZZ_SEEDS="$corpus" cargo test -q -p fnat --test fixtures
cp dpdk-conf/*.toml "$corpus/config/"
cp crates/agent/tests/configs/*.conf crates/agent/tests/configs/conf.d/*.conf "$corpus/keepalived/"
for t in frame wire config keepalived ctl agent_wire; do
    printf 'seeds: %-10s %4d files\n' "$t" "$(find "$corpus/$t" -type f | wc -l)"
done
