#!/usr/bin/env bash
# Seeds, builds and runs every fuzz target in turn, one process at a time.
#
#   fuzz/campaign.sh                      # envelope 180 s, control 240 s, schema 120 s, payload 120 s
#   fuzz/campaign.sh schema=600 control=60
#
# A target with a dictionary in fuzz/dicts/<target>.dict gets it.
#
# Runs on a stable toolchain: RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz passes
# (sanitizer, coverage passes). Logs go to fuzz/artifacts/logs/, crashes to
# fuzz/artifacts/<target>/, both ignored by git.
#
# libFuzzer runs in fork mode with crashes ignored, so that one known crash does not end a
# target's time slice: every crash input is still written to the artifacts directory.
set -euo pipefail

cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-fuzz}"

declare -A seconds=([envelope]=180 [control]=240 [schema]=120 [payload]=120)
for arg in "$@"; do
    seconds[${arg%%=*}]=${arg#*=}
done

cargo run --quiet --manifest-path fuzz/Cargo.toml --example seed
cargo +stable fuzz build

mkdir -p fuzz/artifacts/logs
for target in envelope control schema payload; do
    [[ ${seconds[$target]} -gt 0 ]] || continue
    log="fuzz/artifacts/logs/$target.log"
    echo "== $target: ${seconds[$target]} s, log in $log"
    dict=()
    [[ -f fuzz/dicts/$target.dict ]] && dict=(-dict="fuzz/dicts/$target.dict")
    # Schema texts of the smallest E reach 4 KiB (E/16): inputs must be able to exceed it.
    cargo +stable fuzz run "$target" -- "${dict[@]}" \
        -max_total_time="${seconds[$target]}" -rss_limit_mb=2048 -timeout=5 -max_len=16384 \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -print_final_stats=1 \
        >"$log" 2>&1 || echo "   libFuzzer exited with $?"
    grep -E '^#[0-9]+: ' "$log" | tail -n 1
done
