package inventory

import (
	"fmt"
	"testing"
)

// BenchmarkLoadHCL10k measures a 10,000-host HCL inventory with one range,
// two groups and vars.
func BenchmarkLoadHCL10k(b *testing.B) {
	src := []byte(`defaults { user = "deploy" }
host "node-[00001:10000]" {
  address = "10.${floor(index / 256)}.${index % 256}.1"
  vars    = { rack = index % 40 }
}
group "all_nodes" { hosts = ["node-[00001:10000]"] }
group "canary" { hosts = ["node-[00001:00010]"] }
`)
	for b.Loop() {
		if _, err := parseHCL("b.hcl", src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSelect10k(b *testing.B) {
	src := "[web]\nweb-[00001:10000]\n[canary]\nweb-0000[1:9]\n"
	inv, err := parseINI("b.ini", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		hosts, err := inv.Select("web:!canary:!web-0001*")
		if err != nil || len(hosts) != 10000-9-10 {
			b.Fatal(fmt.Sprint(len(hosts), err))
		}
	}
}
