#!/usr/bin/env bash
# Fuzzes one target under AFL++ and records what it found. See fuzz/README.md.
#
#   fuzz/run.sh <target> [executions=1000000] [timeout-ms=2000]
#
# Builds Release into a work folder, instruments the project's assemblies with SharpFuzz, runs afl-fuzz for
# <executions> on fuzz/seeds/<target> plus fuzz/corpus/<target>, minimises the queue into fuzz/corpus/<target>,
# copies crashes and hangs into fuzz/regressions/<target>, and appends a line to fuzz/results/README.md.
# FUZZ_WORK (default fuzz/.work, ignored by git; afl-cmin refuses /tmp) holds the build and AFL's output; AFL_CPU pins afl-fuzz to a core.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: fuzz/run.sh <target> [executions=1000000] [timeout-ms=2000]}
executions=${2:-1000000}
timeout_ms=${3:-2000}
work=${FUZZ_WORK:-$PWD/fuzz/.work}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v afl-fuzz >/dev/null; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null
fi

# A fresh output folder each time: instrumenting an already instrumented assembly fails.
bin="$work/bin"
rm -rf "$bin"
dotnet tool restore >/dev/null
dotnet build fuzz/SecureChannels.Fuzz/SecureChannels.Fuzz.csproj -c Release -o "$bin" -nologo -v quiet >/dev/null
# Only the project's own code is instrumented: edges in the BCL or MessagePack would be noise in AFL's map.
for assembly in SecureChannels.Protocol SecureChannels.Authority; do
  dotnet tool run sharpfuzz "$bin/$assembly.dll" >/dev/null
done
app="$bin/SecureChannels.Fuzz"
"$app" --list | grep -qx "$target" || { echo "unknown target '$target'; known: $("$app" --list | tr '\n' ' ')" >&2; exit 2; }

seeds="fuzz/seeds/$target"
corpus="fuzz/corpus/$target"
regressions="fuzz/regressions/$target"
if [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
  "$app" "$target" --write-seeds fuzz/seeds
fi

# AFL starts from the seeds and everything the corpus already holds.
run="$work/$target"
rm -rf "$run"
mkdir -p "$run/in"
cp "$seeds"/* "$run/in/"
if [ -d "$corpus" ]; then cp "$corpus"/* "$run/in/" 2>/dev/null || true; fi

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1
cpu=()
if [ -n "${AFL_CPU:-}" ]; then cpu=(-b "$AFL_CPU"); fi
started=$(date +%s)
afl-fuzz "${cpu[@]}" -i "$run/in" -o "$run/out" -E "$executions" -t "$timeout_ms" -m none -- "$app" "$target" >"$run/afl.log" 2>&1 || {
  echo "afl-fuzz failed; the end of its log:" >&2; tail -30 "$run/afl.log" >&2; exit 1; }
ended=$(date +%s)

stats="$run/out/default/fuzzer_stats"
stat() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }

# The minimised queue replaces the corpus: each file keeps at least one edge no other file covers.
mkdir -p "$run/min"
afl-cmin -i "$run/out/default/queue" -o "$run/min" -t "$timeout_ms" -m none -- "$app" "$target" >"$run/cmin.log" 2>&1 || {
  echo "afl-cmin failed; the end of its log:" >&2; tail -20 "$run/cmin.log" >&2; exit 1; }
rm -rf "$corpus"
mkdir -p "$corpus"
for f in "$run/min"/*; do
  [ -f "$f" ] && cp "$f" "$corpus/$(sha1sum "$f" | cut -c1-16)"
done

found=0
for kind in crashes hangs; do
  for f in "$run/out/default/$kind"/id*; do
    [ -f "$f" ] || continue
    mkdir -p "$regressions"
    cp "$f" "$regressions/${kind%es}-$(sha1sum "$f" | cut -c1-16)"
    found=$((found + 1))
  done
done

results=fuzz/results/README.md
if [ ! -f "$results" ]; then
  mkdir -p fuzz/results
  cat >"$results" <<'HEADER'
# Fuzzing results

One line per `fuzz/run.sh` run, read from AFL++'s `fuzzer_stats`. Edges and coverage count only the instrumented
SecureChannels.Protocol and SecureChannels.Authority assemblies. Crashes and hangs are AFL's unique ones; each input is kept in `fuzz/regressions/<target>/`.

| date (UTC) | commit | target | executions | exec/s | edges found | bitmap coverage | crashes | hangs | corpus | duration |
| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
HEADER
fi
duration=$((ended - started))
line=$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %dm%02ds |' \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git rev-parse --short HEAD)" "$target" "$(stat execs_done)" "$(stat execs_per_sec)" \
  "$(stat edges_found)" "$(stat bitmap_cvg)" "$(stat saved_crashes)" "$(stat saved_hangs)" "$(ls "$corpus" | wc -l)" \
  $((duration / 60)) $((duration % 60)))
# The new row goes right after the table's last row, so notes written below the table stay below it.
awk -v row="$line" 'NR == FNR { if ($0 ~ /^\| /) last = FNR; next } { print } FNR == last { print row }' "$results" "$results" >"$results.new"
mv "$results.new" "$results"
echo "$line"
if [ "$found" -gt 0 ]; then echo "$found crash or hang inputs copied to $regressions" >&2; fi
