#!/bin/sh
# Run every fuzz target for a short budget, as `make test` and CI do. Their committed
# corpora (testdata/fuzz/FuzzX/) already run as plain tests under `go test`; this explores
# further. A failure leaves the crasher in the package's testdata/fuzz/ directory: commit
# it with the fix.
#
# The default budget is a count of executions (FUZZEXECS, default 50000 per target), not
# a duration: Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when a -fuzztime duration ends while a worker is busy (go.dev/issue/75804,
# fixed in Go 1.27), which a loaded CI machine hits. A count has no deadline to race.
# FUZZTIME=5m (make fuzz) asks for a duration instead; then a failure that wrote no
# crasher and whose corpus replays clean is reported as that coordinator race, not a bug.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZEXECS=${FUZZEXECS:-50000}
FUZZTIME=${FUZZTIME:-}

# package target [executions] — listed explicitly so a renamed target fails loudly here.
# FuzzShellValue runs /bin/sh four times per execution: a tenth of the count.
targets='
./inventory FuzzParseINI
./inventory FuzzParseYAML
./inventory FuzzParseHCL
./inventory FuzzScriptList
./inventory FuzzPattern
./inventory FuzzFactFilter
./inventory FuzzSelectExpr
./facts FuzzParse
./playbook FuzzLoad
./playbook FuzzShellValue 5000
./playbook FuzzShellTemplate
./steps FuzzLastRunSummary
./steps FuzzPuppetStatus
./transport FuzzSSHConfigParse
./expr FuzzCompareVersions
./expr FuzzParseEval
'

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# corpus_count DIR: how many inputs the target's corpus directory holds.
corpus_count() { if [ -d "$1" ]; then ls "$1" | wc -l; else echo 0; fi; }

failed=0
echo "$targets" | while read -r pkg target execs; do
	[ -n "$pkg" ] || continue
	budget=${FUZZTIME:-${execs:-$FUZZEXECS}x}
	echo "fuzz: $pkg $target ($budget)"
	corpus="$pkg/testdata/fuzz/$target"
	before=$(corpus_count "$corpus")
	# -timeout bounds a count budget that a hanging input would never reach.
	if $GO test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" -parallel 2 -timeout 10m >"$log" 2>&1; then
		tail -n 3 "$log"
		continue
	fi
	cat "$log"
	after=$(corpus_count "$corpus")
	if [ -n "$FUZZTIME" ] && [ "$after" -eq "$before" ] &&
		tail -n 5 "$log" | grep -q '^    context deadline exceeded$' &&
		$GO test "$pkg" -run "^${target}\$" -count=1 >/dev/null 2>&1; then
		echo "fuzz: $pkg $target: the fuzz coordinator's deadline race (no crasher written, corpus replays clean); not a finding" >&2
		continue
	fi
	echo "fuzz: $pkg $target FAILED" >&2
	exit 1
done || failed=1
exit $failed
