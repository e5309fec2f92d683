#!/usr/bin/env bash
# Long campaign of keymix's deterministic adversarial simulation (keymix/tests/sim.rs) in
# release mode. Prints seeds, steps, completed exchanges, simulated time, failures and wall
# time; every failing seed is printed with its replay command (at most 10 are listed).
#
#   scripts/sim-campaign.sh [SEEDS] [FIRST_SEED] [STEPS_PER_SEED]
#
# Defaults: 250000 seeds (about 1.07 M completed exchanges, ~25 min on 2 cores) from 1000000, 250 adversarial steps each. Exit status 1 if any
# seed fails.
set -uo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-250000}
FIRST=${2:-1000000}
STEPS=${3:-250}
log=$(mktemp /tmp/sim-campaign.XXXXXX)
echo "sim-campaign: $SEEDS seeds from $FIRST, $STEPS adversarial steps each (release build); log $log"
start=$(date +%s)
TRIDENT_SIM_SEEDS=$SEEDS TRIDENT_SIM_FIRST=$FIRST TRIDENT_SIM_STEPS=$STEPS \
    cargo test --release -p keymix --test sim campaign_long -- --ignored --nocapture >"$log" 2>&1
status=$?
grep -E '^(sim:|simulation seed|replay:)' "$log"
echo "sim-campaign: wall time $(( $(date +%s) - start )) s (build included), exit $status"
exit "$status"
