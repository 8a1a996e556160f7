package lab

import "testing"

func TestSHA512Crypt(t *testing.T) {
	tests := []struct{ password, salt, want string }{
		// Vectors from Drepper's SHA-crypt specification (default rounds).
		{"Hello world!", "saltstring", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		// Checked against `openssl passwd -6 -salt abcdefgh -stdin`; the second is longer than a digest.
		{"x", "abcdefgh", "$6$abcdefgh$D7W7qyozKBT.t6FD3DVYHvADbIO0eSyI4.p20LaEUjro8PqTGYYo/EQcuNjhFbzo9Yg5ir1KIEqFY/yJpgFph0"},
		{"0123456789012345678901234567890123456789012345678901234567890123456789abc", "abcdefgh", "$6$abcdefgh$ZJmvUiaLyfgsFJynRNZ355rx1BxJgY6aGz334qKIigc/3Dg7cYOrQxk5/PrqjUDhbpIebI.qldNVQI6yoXj4j1"},
	}
	for _, tt := range tests {
		got := sha512Crypt(tt.password, tt.salt)
		if got != tt.want {
			t.Errorf("sha512Crypt(%q, %q) = %q, want %q", tt.password, tt.salt, got, tt.want)
		}
	}
}
