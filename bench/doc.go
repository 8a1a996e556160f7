// Package bench measures drover against the tools operators would otherwise use.
//
// Two parts: cmd/drover-bench (`make bench`) boots a lab of real sshd hosts and times
// drover, parallel-ssh, xargs+ssh, Ansible and facter-over-ssh on the same fleet,
// writing bench/RESULTS.md; and the Go benchmark BenchmarkFleet drives 1,000 and
// 10,000 in-process SSH servers (run by a child process) to measure the controller's
// own throughput, memory and goroutines against a bare x/crypto/ssh loop.
//
//	go test -bench Fleet -run '^$' -benchtime 1x ./bench/
package bench
