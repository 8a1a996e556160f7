#!/bin/sh
# Run every fuzz target for a short budget (FUZZTIME, default 10s each), as `make test`
# and CI do. Their committed corpora (testdata/fuzz/FuzzX/) already run as plain
# tests under `go test`; this explores further. A failure leaves the crasher in the
# package's testdata/fuzz/ directory: commit it with the fix.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}

# package target — listed explicitly so a renamed target fails loudly here.
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
./playbook FuzzShellValue
./playbook FuzzShellTemplate
./steps FuzzLastRunSummary
./steps FuzzPuppetStatus
./transport FuzzSSHConfigParse
./expr FuzzCompareVersions
./expr FuzzParseEval
'

failed=0
echo "$targets" | while read -r pkg target; do
	[ -n "$pkg" ] || continue
	echo "fuzz: $pkg $target ($FUZZTIME)"
	if ! $GO test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel 2; then
		echo "fuzz: $pkg $target FAILED" >&2
		exit 1
	fi
done || failed=1
exit $failed
