#!/usr/bin/env bash
# Installs the Debian packages that drover's tests, lab and demo need, when missing.
# Idempotent: does nothing when everything is present. Needs root (the lab does too).
set -euo pipefail

# facter's answers depend on lsb-release, dmidecode and virt-what (its "recommends"); they are
# named so a fresh machine gives facter the same inputs as the machines the tests were proven on.
pkgs=(openssh-server openssh-client sudo ansible-core facter lsb-release dmidecode virt-what
  busybox apt-utils iproute2 util-linux procps curl puppet-agent puppetserver prometheus)
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
# puppet-agent, puppetserver and prometheus would start their daemons on install; the lab
# starts its own puppetserver and prometheus on demand, and a stray agent daemon would run against nothing. Deny
# service starts for the duration of the install unless a policy already exists.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\n# install-deps.sh: no daemon starts during the install\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
