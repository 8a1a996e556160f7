#!/usr/bin/env bash
# Installs the Debian packages that drover's tests, lab and demo need, when missing.
# Idempotent: does nothing when everything is present. Needs root (the lab does too).
set -euo pipefail

pkgs=(openssh-server openssh-client sudo ansible-core facter busybox apt-utils iproute2 util-linux procps)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]}; run as root (the lab needs root too)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
