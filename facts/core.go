package facts

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// This file re-implements, from the raw material the gatherer sends, the parts
// of Facter 4's Linux resolvers that produce drover's core facts, so that values
// and types equal what `facter --json` prints on the same host.

// core computes the core facts.
func core(s *stream) Facts {
	f := Facts{}
	if v := s.str("uname_s"); v != "" {
		f["kernel"] = v
	}
	if v := s.str("uname_r"); v != "" {
		f["kernelrelease"] = v
	}
	hier := hierarchy(s)
	if arch := architecture(s.str("uname_m"), hier); arch != "" {
		f["architecture"] = arch
	}
	f["os"] = osFacts(s, hier)
	f["networking"] = networking(s)
	if n, err := strconv.ParseInt(s.str("cpucount"), 10, 64); err == nil {
		f["processors"] = map[string]any{"count": n}
	}
	if m := regexp.MustCompile(`MemTotal:\s+(\d+)\s`).FindStringSubmatch(string(s.raw["memtotal"])); m != nil {
		if kb, err := strconv.ParseInt(m[1], 10, 64); err == nil {
			f["memory"] = map[string]any{"system": map[string]any{"total_bytes": kb * 1024}}
		}
	}
	if up, ok := s.file("/proc/uptime"); ok {
		if secs, ok := uptimeSeconds(up); ok {
			hours := secs / 3600
			f["system_uptime"] = map[string]any{"seconds": secs, "hours": hours, "days": hours / 24}
		}
	}
	if v := virtual(s); v != "" {
		f["virtual"] = v
		f["is_virtual"] = v != "physical" && v != "xen0"
	}
	if v := s.str("init_system"); v != "" {
		f["init_system"] = v
	}
	if v := s.str("package_manager"); v != "" {
		f["package_manager"] = v
	}
	if v := puppetVersion(s); v != "" {
		f["puppet"] = map[string]any{"version": v}
	}
	return f
}

// puppetVersionRB finds Puppet's hard-coded version in puppet/version.rb.
var puppetVersionRB = regexp.MustCompile(`(?m)^\s*PUPPETVERSION\s*=\s*['"]([^'"\s]+)['"]`)

// puppetVersion is Puppet.version: the VERSION file or `puppet --version` when the
// gatherer sent one, else the PUPPETVERSION constant of puppet/version.rb.
func puppetVersion(s *stream) string {
	if v := s.str("puppet_version"); v != "" {
		return v
	}
	if m := puppetVersionRB.FindSubmatch(s.raw["puppet_version_rb"]); m != nil {
		return string(m[1])
	}
	return ""
}

// uptimeSeconds is the first field of /proc/uptime truncated, like Ruby's to_i.
func uptimeSeconds(s string) (int64, bool) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return 0, false
	}
	whole, _, _ := strings.Cut(fields[0], ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	return n, err == nil
}

// osRelease is /etc/os-release as Facter's OsRelease resolver reads it.
type osRelease map[string]string

func parseOSRelease(content string) osRelease {
	r := osRelease{}
	for _, line := range strings.Split(content, "\n") {
		line = strings.ReplaceAll(strings.TrimSpace(line), `"`, "")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		r[strings.ToLower(k)] = v
	}
	if n := r["name"]; n != "" {
		r["name"] = processOSName(n)
	}
	if v, ok := r["version_id"]; ok && !strings.Contains(v, ".") {
		r["version_id"] = v + ".0"
	}
	if strings.Contains(strings.ToLower(r["id"]), "opensuse") {
		r["id"] = "opensuse"
	}
	return r
}

func processOSName(n string) string {
	low := strings.ToLower(n)
	words := strings.Fields(n)
	switch {
	case hasAnyPrefix(low, "red", "oracle", "arch", "manjaro"):
		if len(words) > 2 {
			words = words[:2]
		}
		n = strings.Join(words, "")
	case strings.HasSuffix(low, "mariner"):
		if len(words) > 0 {
			n = words[len(words)-1]
		}
	case len(words) > 0:
		n = words[0]
	}
	if hasAnyPrefix(strings.ToLower(n), "arch", "manjaro") {
		n = capitalize(n)
	}
	if strings.HasPrefix(strings.ToLower(n), "virtuozzo") {
		n += "Linux"
	}
	return n
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// capitalize is Ruby's String#capitalize: first letter up, the rest down.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}

// osTree is Facter's OS hierarchy: each known OS and its ancestors.
var osTree = map[string][]string{
	"Linux":  {"Linux"},
	"Debian": {"Linux", "Debian"}, "Elementary": {"Linux", "Debian", "Elementary"},
	"Ubuntu": {"Linux", "Debian", "Ubuntu"}, "Linuxmint": {"Linux", "Debian", "Ubuntu", "Linuxmint"},
	"Raspbian": {"Linux", "Debian", "Raspbian"}, "Devuan": {"Linux", "Debian", "Devuan"},
	"Rhel": {"Linux", "Rhel"}, "Fedora": {"Linux", "Rhel", "Fedora"}, "Amzn": {"Linux", "Rhel", "Amzn"},
	"Centos": {"Linux", "Rhel", "Centos"}, "Ol": {"Linux", "Rhel", "Ol"}, "Scientific": {"Linux", "Rhel", "Scientific"},
	"Meego": {"Linux", "Rhel", "Meego"}, "Oel": {"Linux", "Rhel", "Oel"}, "Ovs": {"Linux", "Rhel", "Ovs"},
	"Sles": {"Linux", "Sles"}, "Opensuse": {"Linux", "Sles", "Opensuse"}, "Sled": {"Linux", "Sles", "Sled"},
	"Gentoo": {"Linux", "Gentoo"}, "Alpine": {"Linux", "Alpine"}, "Photon": {"Linux", "Photon"},
	"Slackware": {"Linux", "Slackware"}, "Mageia": {"Linux", "Mageia"}, "Openwrt": {"Linux", "Openwrt"},
	"Mariner": {"Linux", "Mariner"},
}

// hier is the detected OS hierarchy plus the inputs the OS facts need.
type hier struct {
	path   []string
	osr    osRelease
	redhat redhatRelease
}

func (h hier) is(name string) bool {
	for _, p := range h.path {
		if p == name {
			return true
		}
	}
	return false
}

// hierarchy follows Facter's OsDetector: /etc/devuan_version, else the os-release
// ID, else /etc/redhat-release; unknown IDs fall back on ID_LIKE, then Linux.
func hierarchy(s *stream) hier {
	content, _ := s.file("/etc/os-release")
	h := hier{osr: parseOSRelease(content)}
	if rh, ok := s.file("/etc/redhat-release"); ok {
		h.redhat = parseRedhatRelease(rh)
	}
	id := ""
	if _, ok := s.file("/etc/devuan_version"); ok {
		id = "devuan"
	} else if h.osr["id"] != "" {
		id = h.osr["id"]
	} else if h.redhat != nil {
		id = h.redhat["id"]
	}
	if p, ok := osTree[capitalize(id)]; ok && id != "" {
		h.path = p
		return h
	}
	for _, fam := range strings.Fields(h.osr["id_like"]) {
		if p, ok := osTree[capitalize(fam)]; ok {
			h.path = p
			return h
		}
	}
	h.path = osTree["Linux"]
	return h
}

// redhatRelease is /etc/redhat-release as Facter's RedHatRelease resolver reads it.
type redhatRelease map[string]string

func parseRedhatRelease(content string) redhatRelease {
	r := redhatRelease{}
	parts := strings.Split(content, "release")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	var words []string
	for _, w := range strings.Fields(parts[0]) {
		if !strings.EqualFold(w, "linux") {
			words = append(words, w)
		}
	}
	if len(words) > 2 {
		words = words[:2]
	}
	r["name"] = strings.Join(words, "")
	if m := regexp.MustCompile(`.*release.*(\(.*\)).*`).FindStringSubmatch(content); m != nil {
		if c := strings.Trim(m[1], "()"); c != "" {
			r["codename"] = c
		}
	}
	if len(parts) > 1 {
		if f := strings.Fields(parts[1]); len(f) > 0 {
			r["version"] = f[0]
		}
	}
	// Facter's id(): casecmp returns 0 (truthy in Ruby) or ±1 (also truthy), so
	// every parsed redhat-release yields "rhel".
	r["id"] = "rhel"
	return r
}

func architecture(machine string, h hier) string {
	if machine == "" {
		return ""
	}
	if h.is("Debian") && machine == "x86_64" {
		return "amd64"
	}
	if regexp.MustCompile(`i[3456]86|pentium`).MatchString(machine) {
		return "i386"
	}
	return machine
}

// releaseHash is Facter's release_hash_from_string.
func releaseHash(v string) map[string]any {
	parts := strings.Split(v, ".")
	r := map[string]any{"full": v, "major": parts[0]}
	if len(parts) > 1 {
		r["minor"] = parts[1]
	}
	return r
}

func osFacts(s *stream, h hier) map[string]any {
	o := map[string]any{}
	if m := s.str("uname_m"); m != "" {
		o["hardware"] = m
		o["architecture"] = architecture(m, h)
	}
	osr := h.osr

	// os.name
	name := osr["name"]
	switch {
	case h.is("Linuxmint"):
		name = capitalize(osr["id"])
	case h.is("Rhel") && name == "" && h.redhat != nil:
		name = h.redhat["name"]
	}
	if name != "" {
		o["name"] = name
	}

	// os.family
	switch {
	case h.is("Rhel"):
		o["family"] = "RedHat"
	case h.is("Sles"):
		o["family"] = "Suse"
	default:
		id := osr["id_like"]
		if _, ok := osr["id_like"]; !ok {
			id = osr["id"]
		}
		if fam := discoverFamily(id); fam != "" {
			o["family"] = capitalize(fam)
		}
	}

	// os.release
	var rel map[string]any
	switch {
	case h.is("Ubuntu"), h.path[len(h.path)-1] == "Linux":
		if v, ok := osr["version_id"]; ok {
			rel = map[string]any{"full": v, "major": v}
		}
	case h.is("Devuan"):
		if v, ok := s.file("/etc/devuan_version"); ok {
			rel = releaseHash(strings.TrimSpace(v))
		} else if v, ok := osr["version_id"]; ok {
			rel = releaseHash(v)
		}
	case h.is("Debian"):
		if v, ok := s.file("/etc/debian_version"); ok && strings.TrimSpace(v) != "" {
			v = strings.TrimSpace(v)
			parts := strings.Split(v, ".")
			rel = map[string]any{"full": v, "major": parts[0]}
			if len(parts) > 1 {
				rel["minor"] = regexp.MustCompile(`^0([1-9])`).ReplaceAllString(parts[1], "$1")
			}
		}
	case h.is("Rhel"):
		if v := h.redhat["version"]; v != "" {
			rel = releaseHash(v)
		} else if v, ok := osr["version_id"]; ok {
			rel = releaseHash(v)
		}
	case h.is("Alpine"):
		if v, ok := s.file("/etc/alpine-release"); ok {
			rel = releaseHash(strings.TrimSpace(v))
		} else if v, ok := osr["version_id"]; ok {
			rel = releaseHash(v)
		}
	case h.is("Sles"):
		if v, ok := osr["version_id"]; ok {
			parts := strings.Split(v, ".")
			rel = map[string]any{"full": v, "major": parts[0], "minor": parts[len(parts)-1]}
		}
	default:
		if v, ok := osr["version_id"]; ok {
			rel = releaseHash(v)
		}
	}
	if rel != nil {
		o["release"] = rel
	}

	// os.distro.codename
	codename := ""
	switch {
	case h.is("Debian"):
		codename = osr["version_codename"]
		if codename == "" {
			codename = codenameFromVersion(osr["version"])
		}
	case h.is("Rhel"):
		codename = h.redhat["codename"]
	case h.is("Sles"):
		codename = osr["version_codename"]
		if codename == "" {
			codename = "n/a"
		}
	default:
		// Facter asks lsb_release here; os-release usually carries the same.
		codename = osr["version_codename"]
	}
	if codename != "" {
		o["distro"] = map[string]any{"codename": codename}
	}
	return o
}

// codenameFromVersion is Facter's Debian fallback: "(bookworm)" at the end of
// VERSION, else the first of two words, lowercased.
func codenameFromVersion(v string) string {
	if v == "" {
		return ""
	}
	if m := regexp.MustCompile(`\(.*\)$`).FindString(v); m != "" {
		if c := strings.NewReplacer("(", "", ")", "").Replace(m); c != "" {
			return c
		}
	}
	if m := regexp.MustCompile(`[A-Za-z]+\s[A-Za-z]+`).FindString(v); m != "" {
		return strings.ToLower(strings.Fields(m)[0])
	}
	return ""
}

var families = []struct {
	name    string
	members []string
}{
	{"RedHat", []string{"redhat", "rhel", "fedora", "centos", "scientific", "ascendos", "cloudlinux", "psbm",
		"oraclelinux", "ovs", "oel", "amazon", "xenserver", "xcp-ng", "virtuozzo", "photon", "mariner"}},
	{"Debian", []string{"debian", "ubuntu", "huaweios", "linuxmint", "devuan", "kde"}},
	{"Suse", []string{"sles", "sled", "suse"}},
	{"Gentoo", []string{"gentoo"}},
	{"Archlinux", []string{"arch", "manjaro"}},
	{"Mandrake", []string{"mandrake", "mandriva", "mageia"}},
}

// discoverFamily is Facter's discover_family: a case-insensitive substring match.
func discoverFamily(id string) string {
	low := strings.ToLower(id)
	for _, f := range families {
		for _, m := range f.members {
			if strings.Contains(low, m) {
				return f.name
			}
		}
	}
	return id
}

// networking computes hostname, domain, fqdn, primary and ip like Facter's
// Linux hostname and networking resolvers.
func networking(s *stream) map[string]any {
	n := map[string]any{}
	host := s.str("uname_n")
	if host != "" && !strings.Contains(host, "0.0.0.0") {
		hostname, domain, fqdn := host, "", ""
		// Facter's /(.*?)\.(.+$)/: a name with a dot carries its domain.
		if h, d, ok := strings.Cut(host, "."); ok && d != "" {
			hostname, domain = h, d
		}
		if domain == "" && hostname != "" {
			fqdn = canonName(s.str("ahosts"), hostname)
		}
		if fqdn != "" && strings.HasPrefix(fqdn, hostname+".") {
			_, domain, _ = strings.Cut(fqdn, ".")
		}
		if domain == "" {
			resolv, _ := s.file("/etc/resolv.conf")
			domain = resolvDomain(resolv)
		}
		if fqdn == "" {
			fqdn = hostname
			if domain != "" {
				fqdn = hostname + "." + domain
			}
		}
		n["hostname"] = hostname
		if domain != "" {
			n["domain"] = domain
		}
		n["fqdn"] = fqdn
	}
	ifaces := parseIPAddr(string(s.raw["ipaddr"]))
	route, _ := s.file("/proc/net/route")
	primary := defaultRouteIface(route)
	if primary == "" {
		for _, i := range ifaces {
			if i.hasValid() {
				primary = i.name
				break
			}
		}
	}
	if primary != "" {
		n["primary"] = primary
		for _, i := range ifaces {
			if i.name != primary {
				continue
			}
			if ip := pickBinding(i.v4); ip != "" {
				n["ip"] = ip
			}
			if ip := pickBinding(i.v6); ip != "" {
				n["ip6"] = ip
			}
		}
	}
	return n
}

// canonName is the canonical name from `getent ahosts HOST | head -n1`
// ("ADDR STREAM CANON"), when it differs from the host name and the address.
func canonName(line, host string) string {
	f := strings.Fields(line)
	if len(f) < 3 || f[2] == host || f[2] == f[0] {
		return ""
	}
	return f[2]
}

func resolvDomain(content string) string {
	if m := regexp.MustCompile(`(?m)^domain\s+(\S+)`).FindStringSubmatch(content); m != nil {
		return m[1]
	}
	if m := regexp.MustCompile(`(?m)^search\s+(\S+)`).FindStringSubmatch(content); m != nil {
		return m[1]
	}
	return ""
}

// defaultRouteIface is the first default route's interface in /proc/net/route.
func defaultRouteIface(content string) string {
	for i, line := range strings.Split(content, "\n") {
		if i == 0 {
			continue
		}
		r := strings.Split(strings.TrimSpace(line), "\t")
		for j := range r {
			r[j] = strings.TrimSpace(r[j])
		}
		if len(r) > 7 && r[1] == "00000000" && r[7] == "00000000" && r[0] != "*" {
			return r[0]
		}
	}
	return ""
}

type iface struct {
	name   string
	v4, v6 []string
}

func (i iface) hasValid() bool {
	for _, a := range append(append([]string{}, i.v4...), i.v6...) {
		if !ignoredIP(a) {
			return true
		}
	}
	return false
}

// parseIPAddr reads `ip -o addr show`, keeping interface and address order.
func parseIPAddr(out string) []iface {
	var list []iface
	idx := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || (f[2] != "inet" && f[2] != "inet6") {
			continue
		}
		name, _, _ := strings.Cut(f[1], "@")
		addr, _, _ := strings.Cut(f[3], "/")
		i, ok := idx[name]
		if !ok {
			i = len(list)
			idx[name] = i
			list = append(list, iface{name: name})
		}
		if f[2] == "inet" {
			list[i].v4 = append(list[i].v4, addr)
		} else {
			list[i].v6 = append(list[i].v6, addr)
		}
	}
	return list
}

// pickBinding is Facter's find_valid_binding: the first address that is not
// loopback or link-local/ULA, else the first address.
func pickBinding(addrs []string) string {
	for _, a := range addrs {
		if !ignoredIP(a) {
			return a
		}
	}
	if len(addrs) > 0 {
		return addrs[0]
	}
	return ""
}

func ignoredIP(a string) bool {
	ip, err := netip.ParseAddr(a)
	if err != nil {
		return true
	}
	ip = ip.WithZone("")
	return ip.IsLoopback() || ip.IsLinkLocalUnicast() ||
		netip.MustParsePrefix("fc00::/7").Contains(ip)
}

// virtual is a best-effort version of Facter's VirtualDetector.
func virtual(s *stream) string {
	cg, cgOK := s.file("/proc/1/cgroup")
	_, envOK := s.raw["container_env"]
	env := string(s.raw["container_env"])
	// Facter needs both files readable to look at containers at all.
	if cgOK && envOK {
		lxc := regexp.MustCompile(`(?m)^/lxc/([^/]+)`).MatchString(cg) || strings.Contains(env, "container=lxc")
		switch {
		case lxc:
			return "lxc"
		case regexp.MustCompile(`docker/(.+)`).MatchString(cg):
			return "docker"
		case strings.Contains(env, "container=systemd-nspawn"):
			return "systemd_nspawn"
		}
	}
	bios, _ := s.file("/sys/class/dmi/id/bios_vendor")
	if strings.Contains(bios, "Google") {
		return "gce"
	}
	if caps, ok := s.file("/proc/xen/capabilities"); ok {
		if strings.Contains(caps, "control_d") {
			return "xen0"
		}
		return "xenu"
	}
	if strings.Contains(bios, "Amazon EC2") {
		return "kvm"
	}
	product, _ := s.file("/sys/class/dmi/id/product_name")
	for _, h := range []struct{ key, val string }{
		{"VMware", "vmware"}, {"VirtualBox", "virtualbox"}, {"Parallels", "parallels"}, {"KVM", "kvm"},
		{"Virtual Machine", "hyperv"}, {"RHEV Hypervisor", "rhev"}, {"oVirt Node", "ovirt"},
		{"HVM domU", "xenhvm"}, {"Bochs", "bochs"}, {"OpenBSD", "vmm"}, {"BHYVE", "bhyve"},
	} {
		if strings.Contains(product, h.key) {
			return h.val
		}
	}
	return "physical"
}
