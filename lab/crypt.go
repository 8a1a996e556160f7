package lab

import (
	"crypto/sha512"
	"strings"
)

// sha512Crypt computes glibc's "$6$" password hash (Drepper's SHA-crypt, 5000 rounds)
// for a shadow line. The lab needs it once per lab for the sudo user; writing the
// shadow entry directly is much faster than running chpasswd inside every host.
func sha512Crypt(password, salt string) string {
	if len(salt) > 16 {
		salt = salt[:16]
	}
	p, s := []byte(password), []byte(salt)
	const rounds = 5000

	b := sha512.New()
	b.Write(p)
	b.Write(s)
	b.Write(p)
	bsum := b.Sum(nil)

	a := sha512.New()
	a.Write(p)
	a.Write(s)
	n := len(p)
	for ; n > 64; n -= 64 {
		a.Write(bsum)
	}
	a.Write(bsum[:n])
	for n = len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(bsum)
		} else {
			a.Write(p)
		}
	}
	asum := a.Sum(nil)

	dp := sha512.New()
	for range len(p) {
		dp.Write(p)
	}
	dpsum := dp.Sum(nil)
	pseq := make([]byte, 0, len(p))
	for n = len(p); n > 64; n -= 64 {
		pseq = append(pseq, dpsum...)
	}
	pseq = append(pseq, dpsum[:n]...)

	ds := sha512.New()
	for range 16 + int(asum[0]) {
		ds.Write(s)
	}
	sseq := ds.Sum(nil)[:len(s)]

	c := asum
	for i := range rounds {
		h := sha512.New()
		if i&1 != 0 {
			h.Write(pseq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sseq)
		}
		if i%7 != 0 {
			h.Write(pseq)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pseq)
		}
		c = h.Sum(nil)
	}

	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var out strings.Builder
	out.WriteString("$6$" + salt + "$")
	enc := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(itoa64[w&0x3f])
			w >>= 6
		}
	}
	order := [][3]int{
		{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
		{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13},
		{56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41},
	}
	for _, o := range order {
		enc(c[o[0]], c[o[1]], c[o[2]], 4)
	}
	enc(0, 0, c[63], 2)
	return out.String()
}
