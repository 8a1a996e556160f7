package steptest

import (
	"testing"

	"github.com/drover-sh/drover/transport"
)

func TestRunComposite(t *testing.T) {
	pkg := "apt-get install -y demo-web=2.0\nrc=$?\nprintf '\\n%s\\n' @@after\ndpkg-query -W demo-web; apt-cache policy demo-web\nexit $rc"
	svc := "{ service demo-web restart; }\nrc=$?\n[ $rc -eq 0 ] || exit $rc\nprintf '\\n%s\\n' @@verify\ni=0; until service demo-web status; do sleep 1; done"
	tests := []struct {
		name, cmd  string
		exits      map[string]int
		wantRan    []string
		wantOut    string
		wantExit   int
		notAScript bool
	}{
		{"package", pkg, nil, []string{"apt-get install -y demo-web=2.0", "dpkg-query -W demo-web; apt-cache policy demo-web"},
			"out:apt-get install -y demo-web=2.0\n@@after\nout:dpkg-query -W demo-web; apt-cache policy demo-web", 0, false},
		{"package change fails, status still runs", pkg, map[string]int{"apt-get install -y demo-web=2.0": 100},
			[]string{"apt-get install -y demo-web=2.0", "dpkg-query -W demo-web; apt-cache policy demo-web"},
			"out:apt-get install -y demo-web=2.0\n@@after\nout:dpkg-query -W demo-web; apt-cache policy demo-web", 100, false},
		{"service", svc, map[string]int{"i=0; until service demo-web status; do sleep 1; done": 1},
			[]string{"service demo-web restart", "i=0; until service demo-web status; do sleep 1; done"},
			"out:service demo-web restart\n@@verify\nout:i=0; until service demo-web status; do sleep 1; done", 1, false},
		{"service change fails: no verify", svc, map[string]int{"service demo-web restart": 3},
			[]string{"service demo-web restart"}, "out:service demo-web restart", 3, false},
		{"plain command", "uname -r", nil, nil, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran []string
			res, ok, err := RunComposite(tt.cmd, func(c string) (*transport.Result, error) {
				ran = append(ran, c)
				return &transport.Result{ExitCode: tt.exits[c], Stdout: []byte("out:" + c)}, nil
			})
			if err != nil || ok == tt.notAScript {
				t.Fatalf("ok %v err %v", ok, err)
			}
			if tt.notAScript {
				return
			}
			if len(ran) != len(tt.wantRan) || (len(ran) > 0 && ran[0] != tt.wantRan[0]) || (len(ran) > 1 && ran[1] != tt.wantRan[1]) {
				t.Errorf("ran %q, want %q", ran, tt.wantRan)
			}
			if string(res.Stdout) != tt.wantOut || res.ExitCode != tt.wantExit {
				t.Errorf("stdout %q exit %d, want %q exit %d", res.Stdout, res.ExitCode, tt.wantOut, tt.wantExit)
			}
		})
	}
}
