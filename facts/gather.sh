# drover fact gatherer (POSIX sh; dash and busybox compatible).
#
# It only collects raw material; the controller computes the facts. Output is a
# header line "DRV2 <boundary>" and then fields, each followed by
# "\n<boundary>\n"; fields come in threes: kind, name, value. The boundary is
# random per run (from the controller, else /dev/urandom), so file contents and
# fact values written before the run cannot forge a field; nothing read from the
# host is ever evaluated by a shell. Few processes are forked on purpose: on
# slow hosts every fork costs milliseconds across a whole fleet.
LC_ALL=C
export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/puppetlabs/bin:$PATH
export PATH

# Everything runs inside main with stdin from /dev/null: the script itself
# arrives on stdin (sh -s), and a command reading stdin would swallow its rest.
# The shell reads the whole function before running it.
main() {
	b=${DROVER_BOUNDARY:-}
	if [ -z "$b" ]; then
		b=$(od -An -N16 -tx1 /dev/urandom 2>/dev/null | tr -d ' \n')
		[ -n "$b" ] || b=$$.$(date +%s 2>/dev/null)
		b=drv-$b
	fi
	printf 'DRV2 %s\n' "$b"

	# val KIND NAME VALUE
	val() { printf '%s\n%s\n%s\n%s\n%s\n%s\n' "$1" "$b" "$2" "$b" "$3" "$b"; }
	# rec KIND NAME: a record whose value is read from stdin.
	rec() {
		printf '%s\n%s\n%s\n%s\n' "$1" "$b" "$2" "$b"
		cat
		printf '\n%s\n' "$b"
	}
	# file PATH: the file's bytes under its own path, when it is a readable file.
	file() {
		if [ -f "$1" ] && [ -r "$1" ]; then
			rec file "$1" <"$1"
		fi
	}

	# shellcheck disable=SC2046 # word splitting wanted: four single-word fields
	set -- $(uname -snrm 2>/dev/null)
	val raw uname_s "${1:-}"
	host=${2:-}
	val raw uname_n "$host"
	val raw uname_r "${3:-}"
	val raw uname_m "${4:-}"
	uid=$(id -u 2>/dev/null)
	val raw uid "$uid"

	if [ -d /run/systemd/system ]; then
		val raw init_system systemd
	elif [ -x /sbin/openrc ] || [ -x /sbin/openrc-run ]; then
		val raw init_system openrc
	else
		val raw init_system sysv
	fi
	for pm in apt-get:apt dnf:dnf yum:yum zypper:zypper apk:apk; do
		if command -v "${pm%%:*}" >/dev/null 2>&1; then
			val raw package_manager "${pm#*:}"
			break
		fi
	done
	# Core only (DROVER_CORE=1): what the steps need, for a playbook that reads no fact.
	if [ "${DROVER_CORE:-0}" = 1 ]; then
		val end end ""
		return 0
	fi

	for f in /etc/os-release /etc/debian_version /etc/devuan_version /etc/redhat-release \
		/etc/alpine-release /etc/resolv.conf /proc/net/route /proc/uptime /proc/1/cgroup \
		/proc/xen/capabilities /sys/class/dmi/id/product_name /sys/class/dmi/id/bios_vendor; do
		file "$f"
	done

	# The canonical name getaddrinfo(AI_CANONNAME) gives, as Facter uses for the fqdn.
	if [ -n "$host" ] && command -v getent >/dev/null 2>&1; then
		getent ahosts "$host" 2>/dev/null | rec raw ahosts
	fi
	if command -v ip >/dev/null 2>&1; then
		ip -o addr show 2>/dev/null | rec raw ipaddr
	fi
	if [ -r /proc/cpuinfo ]; then
		val raw cpucount "$(grep -c '^processor[[:space:]]*:' /proc/cpuinfo 2>/dev/null)"
	fi
	if [ -r /proc/meminfo ]; then
		while IFS= read -r line; do
			case "$line" in MemTotal:*)
				val raw memtotal "$line"
				break
				;;
			esac
		done </proc/meminfo
	fi
	# Only the container= entry of pid 1's environment: the rest may hold secrets.
	if [ -r /proc/1/environ ] && (: </proc/1/environ) 2>/dev/null; then
		tr '\000' '\n' 2>/dev/null </proc/1/environ | grep '^container=' | rec raw container_env
	fi

	# `puppet --version` boots Ruby and Puppet: 1.4 s of CPU per host. Puppet.version
	# is the VERSION file beside puppet/version.rb, else its PUPPETVERSION constant;
	# read those for the puppet on PATH, and only run it when neither is found.
	if pp=$(command -v puppet 2>/dev/null); then
		case "$pp" in
		/opt/puppetlabs/*) vdirs=/opt/puppetlabs/puppet/lib/ruby/vendor_ruby/puppet ;;
		*) vdirs='/usr/lib/ruby/vendor_ruby/puppet /usr/share/ruby/vendor_ruby/puppet' ;;
		esac
		pv=
		for d in $vdirs; do
			if [ -f "$d/VERSION" ] && [ -r "$d/VERSION" ]; then
				rec raw puppet_version <"$d/VERSION"
			elif [ -f "$d/version.rb" ] && [ -r "$d/version.rb" ]; then
				rec raw puppet_version_rb <"$d/version.rb"
			else
				continue
			fi
			pv=1
			break
		done
		[ -n "$pv" ] || puppet --version 2>/dev/null | rec raw puppet_version
	fi

	# External facts, in Facter's directories (root's, or ~/.facter/facts.d otherwise).
	# Files are listed in glob order (byte order under LC_ALL=C); the controller
	# applies Facter's precedence.
	if [ "$uid" = 0 ]; then
		dirs='/etc/puppetlabs/facter/facts.d /etc/facter/facts.d /opt/puppetlabs/facter/facts.d'
	else
		dirs=
		[ -n "${HOME:-}" ] && dirs="$HOME/.facter/facts.d"
	fi
	tmo=
	command -v timeout >/dev/null 2>&1 && tmo='timeout 60'
	for d in $dirs; do
		[ -d "$d" ] || continue
		val extdir "$d" ""
		for f in "$d"/*; do
			[ -f "$f" ] || continue
			case "$f" in
			*.[yY][aA][mM][lL]) [ -r "$f" ] && rec ext_yaml "$f" <"$f" ;;
			*.[tT][xX][tT]) [ -r "$f" ] && rec ext_txt "$f" <"$f" ;;
			*.[jJ][sS][oO][nN]) [ -r "$f" ] && rec ext_json "$f" <"$f" ;;
			*.[bB][aA][tT] | *.[cC][mM][dD] | *.[cC][oO][mM] | *.[eE][xX][eE]) : ;;
			*)
				if [ -x "$f" ]; then
					# $tmo is unquoted on purpose: empty, or "timeout 60".
					$tmo "$f" </dev/null 2>/dev/null | rec ext_exec "$f"
				fi
				;;
			esac
		done
	done

	if [ "${DROVER_FACTER:-0}" = 1 ]; then
		if command -v facter >/dev/null 2>&1; then
			facter --json 2>/dev/null | rec facter json
		else
			val error facter "facter is not installed"
		fi
	fi

	val end end ""
}
main </dev/null
exit 0
