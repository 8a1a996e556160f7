#!/usr/bin/env bash
# make demo: start a lab of real sshd hosts, show drover reaching them, then tear it down.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${DEMO_HOSTS:-10}
dir=$(mktemp -d /tmp/drover-demo.XXXXXX)
lab=./bin/drover-lab
drover=./bin/drover
cleanup() { "$lab" down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting a lab of $hosts real OpenSSH hosts (namespaces + overlayfs, 127.1.0.x)"
"$lab" up --hosts "$hosts" --dir "$dir"
export DROVER_INVENTORY="$dir/inventory.hcl"
ssh_cfg=(--ssh-config "$dir/ssh_config")

step "drover inventory list"
"$drover" inventory list "${ssh_cfg[@]}"

step "drover inventory show h2  (the resolved connection, as ssh -G would)"
"$drover" inventory show h2 "${ssh_cfg[@]}"

step "drover ping all"
"$drover" ping all "${ssh_cfg[@]}"

step "freeze h3 (SIGSTOP its whole pid namespace) and ping again with --connect-timeout 2s"
"$lab" freeze h3 --dir "$dir"
"$drover" ping all "${ssh_cfg[@]}" --connect-timeout 2s || echo "(exit $? — one host unreachable, as expected)"
"$lab" thaw h3 --dir "$dir"

step "done; the lab is torn down on exit"
