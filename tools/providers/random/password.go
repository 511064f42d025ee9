package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
)

const (
	lowerChars   = "abcdefghijklmnopqrstuvwxyz"
	upperChars   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	numericChars = "0123456789"
	// The upstream provider's default special characters.
	defaultSpecialChars = "!@#$%&*()-_=+[]{}<>:?"
)

type passwordSpec struct {
	Length                                     int
	Upper, Lower, Numeric, Special             bool
	MinUpper, MinLower, MinNumeric, MinSpecial int
	OverrideSpecial                            *string
}

// randIndex returns a uniformly distributed integer in [0, n) from crypto/rand (big.Int rejection sampling,
// no modulo bias).
func randIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, err
	}
	return int(v.Int64()), nil
}

func dedupe(s string) string {
	seen := map[rune]bool{}
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return string(out)
}

// generatePassword: the minimum of each enabled class first, the rest from the union of the
// enabled classes, then a Fisher-Yates shuffle; every draw is uniform from crypto/rand.
func generatePassword(s passwordSpec) (string, error) {
	if s.Length < 1 {
		return "", errors.New("length must be at least 1")
	}
	special := defaultSpecialChars
	if s.OverrideSpecial != nil {
		special = *s.OverrideSpecial
	}
	type class struct {
		chars string
		min   int
	}
	var classes []class
	if s.Upper {
		classes = append(classes, class{upperChars, s.MinUpper})
	}
	if s.Lower {
		classes = append(classes, class{lowerChars, s.MinLower})
	}
	if s.Numeric {
		classes = append(classes, class{numericChars, s.MinNumeric})
	}
	if s.Special && special != "" {
		classes = append(classes, class{dedupe(special), s.MinSpecial})
	}
	all := ""
	need := 0
	for _, c := range classes {
		if c.min < 0 {
			return "", errors.New("minimums must not be negative")
		}
		all += c.chars
		need += c.min
	}
	all = dedupe(all)
	if all == "" {
		return "", errors.New("no character class enabled (upper, lower, numeric, special)")
	}
	if need > s.Length {
		return "", fmt.Errorf("length %d is shorter than the sum of the minimums (%d)", s.Length, need)
	}
	out := make([]rune, 0, s.Length)
	pick := func(chars string) error {
		rs := []rune(chars)
		i, err := randIndex(len(rs))
		if err != nil {
			return err
		}
		out = append(out, rs[i])
		return nil
	}
	for _, c := range classes {
		for i := 0; i < c.min; i++ {
			if err := pick(c.chars); err != nil {
				return "", err
			}
		}
	}
	for len(out) < s.Length {
		if err := pick(all); err != nil {
			return "", err
		}
	}
	for i := len(out) - 1; i > 0; i-- {
		j, err := randIndex(i + 1)
		if err != nil {
			return "", err
		}
		out[i], out[j] = out[j], out[i]
	}
	return string(out), nil
}
