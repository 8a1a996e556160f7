#!/bin/sh
# drover lab host boot script. It runs as pid 1 of fresh mount, UTS and pid namespaces
# (unshare --fork), builds the host's root and execs the host's sshd, which stays pid 1:
# killing it tears the whole host down.
# Arguments: FSTAB NAME ROOT. FSTAB (written by lab) mounts, in order, a copy-on-write
# overlay of / on ROOT (upper and work dirs on a tmpfs: the kernel refuses an upper dir
# inside the lower layer), a new /proc for the pid namespace, /sys and /dev (rbind), and
# fresh tmpfs on /run, /tmp and /dev/shm: one mount(8) process instead of seven.
set -eu
fstab=$1 name=$2 root=$3
mount --all --fstab "$fstab"
mkdir -m 0755 "$root/run/sshd"
hostname "$name"
exec chroot "$root" /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
