#!/usr/bin/env bash
# make demo: start a lab of real sshd hosts (and a real Prometheus scraping them), show drover
# reaching them, then a staged rollout: a broken release halts at the canary (rolled back), a
# good one goes through with Prometheus gates after every batch. Then tear down. About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${DEMO_HOSTS:-10}
dir=$(mktemp -d /tmp/drover-demo.XXXXXX)
lab=./bin/drover-lab
drover=./bin/drover
cleanup() { "$lab" down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting a lab of $hosts real OpenSSH hosts (namespaces + overlayfs, 127.1.0.x) and Prometheus"
"$lab" up --hosts "$hosts" --dir "$dir" --prometheus
prometheus=$("$lab" status --dir "$dir" --json | sed -n 's/.*"prometheus": "\(.*\)".*/\1/p')
export DROVER_INVENTORY="$dir/inventory.hcl"
ssh_cfg=(--ssh-config "$dir/ssh_config")

step "drover inventory list"
"$drover" inventory list "${ssh_cfg[@]}"

step "drover ping all"
"$drover" ping all "${ssh_cfg[@]}"

step "freeze h3 (SIGSTOP its whole pid namespace) and ping again with --connect-timeout 2s"
"$lab" freeze h3 --dir "$dir"
"$drover" ping all "${ssh_cfg[@]}" --connect-timeout 2s || echo "(exit $? — one host unreachable, as expected)"
"$lab" thaw h3 --dir "$dir"

export DROVER_STATE_DIR="$dir/state" # run reports and the fact cache stay inside the demo
playbook=examples/demo-web-prometheus.hcl

# expect CODE CMD...: run CMD; its exit status must be CODE (drover's exit codes are the point).
expect() {
	local want=$1 code=0
	shift
	"$@" || code=$?
	if [ "$code" -ne "$want" ]; then
		echo "demo: expected exit $want, got $code from: $*" >&2
		exit 1
	fi
	echo "(exit $code, as expected)"
}

step "install demo-web 1.0 on every host (drover exec)"
expect 0 "$drover" exec all "${ssh_cfg[@]}" --group -- \
	'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades demo-web=1.0 >/dev/null 2>&1 && dpkg-query -W demo-web'

step "drover run $playbook --var version=3.0  (3.0's /health answers 500: halts at the canary, which is rolled back)"
expect 3 "$drover" run "$playbook" "${ssh_cfg[@]}" --var version=3.0 --var prometheus="$prometheus"

step "the canary is back on 1.0 and nothing else was touched"
expect 0 "$drover" exec all "${ssh_cfg[@]}" -- "dpkg-query -W -f '\${Version}\n' demo-web"

step "drover run $playbook --var version=2.0  (canary, Prometheus gate, batches of 2 each gated, then the rest)"
expect 0 "$drover" run "$playbook" "${ssh_cfg[@]}" --var version=2.0 --var prometheus="$prometheus"

step "what Prometheus sees now: demo_web_version_info by host"
curl -fsS --max-time 5 "$prometheus/api/v1/query" --data-urlencode 'query=demo_web_version_info' |
	grep -o '"host":"h[0-9]*"\|"version":"[^"]*"' | paste -d' ' - - | sort -V | tr -d '"' || true

step "every host answers on :8080/health (asked from here)"
for addr in $(awk -F'"' '/address/ { print $2 }' "$dir/inventory.hcl"); do
	printf '%-12s %s\n' "$addr" "$(curl -fsS --max-time 5 "http://$addr:8080/health" 2>&1 || true)"
done

step "done in ${SECONDS}s; the lab is torn down on exit"
