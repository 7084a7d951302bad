#!/usr/bin/env bash
# How often a retry was answered with its original offset (issue 5): runs scenarios/idempotent-retries.toml
# over seeds FIRST..LAST (default 1..100) and sums the mark duplicate-batch-answered-with-original-offset.
#
#   scripts/idempotent-retries-100-seeds.sh [FIRST [LAST [SCENARIO]]]
#
# Prints one line per seed (seed, verdict, mark count, acked) and a total; exits 1 if any seed failed.
# Each seed is `cargo run --release -- run SCENARIO --seed N --json`; the script builds once and runs the
# binary itself, because in a git worktree (where .git is a file) build.rs's rerun-if-changed paths are
# missing and every `cargo run` would rebuild the crate. GREGOR_NO_BUILD=1 skips the build.
set -euo pipefail
first=${1:-1}
last=${2:-100}
scenario=${3:-scenarios/idempotent-retries.toml}
mark=duplicate-batch-answered-with-original-offset
cd "$(dirname "$0")/.."
if [[ -z ${GREGOR_NO_BUILD:-} ]]; then cargo build --release --quiet; fi
gregor=target/release/gregor
pass=0 fail=0 total=0 hit=0 min='' max=0 failed=()
for seed in $(seq "$first" "$last"); do
  # Exit code 1 is a failed run, still with its JSON summary; 2 is bad input.
  json=$("$gregor" run "$scenario" --seed "$seed" --json 2>/dev/null | tail -n 1) || true
  if ! read -r verdict n acked < <(jq -r --arg m "$mark" '"\(.verdict) \(.marks[$m] // 0) \(.acked)"' <<<"$json"); then
    echo "seed $seed: no JSON summary" >&2
    exit 2
  fi
  printf 'seed %3d  %-4s  %s=%s  acked=%s\n' "$seed" "$verdict" "$mark" "$n" "$acked"
  if [[ $verdict == pass ]]; then pass=$((pass + 1)); else fail=$((fail + 1)); failed+=("$seed"); fi
  total=$((total + n))
  if ((n > 0)); then hit=$((hit + 1)); fi
  if [[ -z $min ]] || ((n < min)); then min=$n; fi
  if ((n > max)); then max=$n; fi
done
runs=$((last - first + 1))
echo "seeds $first..$last of $scenario: $pass pass, $fail fail${failed:+ (${failed[*]})}"
echo "$mark: $total in all over $runs runs (mean $(awk "BEGIN{printf \"%.1f\", $total/$runs}"), min $min, max $max); hit on $hit of $runs seeds"
((fail == 0))
