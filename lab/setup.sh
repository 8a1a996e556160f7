#!/bin/sh
# drover lab host boot script. It runs as pid 1 of fresh mount, UTS and pid namespaces
# (unshare --fork), builds the host's root, then chroots into it and becomes the host's
# init: a small loop that runs sshd and, when the host asks for a reboot, starts it again
# with a new boot id. Killing pid 1 tears the whole host down.
# Arguments: FSTAB NAME ROOT. FSTAB (written by lab) mounts, in order, a copy-on-write
# overlay of / on ROOT (upper and work dirs on a tmpfs: the kernel refuses an upper dir
# inside the lower layer), a new /proc for the pid namespace, the host's boot id file over
# /proc/sys/kernel/random/boot_id, /sys and /dev (rbind), and fresh tmpfs on /run, /tmp
# and /dev/shm: one mount(8) process instead of many.
set -eu
fstab=$1 name=$2 root=$3
mount --all --fstab "$fstab"
hostname "$name"

# The init, run inside the host's root. The lab's reboot and shutdown commands
# (/usr/sbin/reboot, /usr/sbin/shutdown in the host) touch /run/drover-lab-reboot and
# stop sshd; the init then does what a reboot does to userland: kill every process, give
# the host fresh /run, /tmp and /dev/shm (so /run/reboot-required is gone) and a new boot
# id, and start sshd again. sshd ending without that file (a crash, a bad config) ends
# the host as before. As pid 1 it ignores signals it has no handler for, so only the lab
# (SIGKILL) ends it from outside. While it waits it reaps every orphan, as an init must.
init='
set -u
boots=0
while :; do
	if [ "$boots" -gt 0 ]; then
		cat /proc/sys/kernel/random/uuid >/proc/sys/kernel/random/boot_id
	fi
	boots=$((boots + 1))
	mkdir -p -m 0755 /run/sshd
	/usr/sbin/sshd -D -e -f /etc/ssh/sshd_config &
	st=0
	wait $! || st=$?
	if [ ! -e /run/drover-lab-reboot ]; then
		exit "$st"
	fi
	echo "drover-lab: $0: reboot requested, restarting"
	kill -9 -1 2>/dev/null || :
	umount -l /dev/shm /tmp /run
	mount -t tmpfs -o mode=0755,nosuid,nodev lab-run /run
	mount -t tmpfs -o mode=1777,nosuid,nodev lab-tmp /tmp
	mount -t tmpfs -o mode=1777,nosuid,nodev lab-shm /dev/shm
done
'
exec chroot "$root" /bin/sh -c "$init" "$name"
