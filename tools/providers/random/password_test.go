package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func count(s, chars string) int {
	n := 0
	for _, r := range s {
		if strings.ContainsRune(chars, r) {
			n++
		}
	}
	return n
}

func TestPasswordLengthMinimumsCharset(t *testing.T) {
	spec := passwordSpec{Length: 44, Upper: true, Lower: true, Numeric: true, Special: false, MinUpper: 4, MinLower: 4, MinNumeric: 4}
	seen := map[string]bool{}
	for i := 0; i < 500; i++ {
		pw, err := generatePassword(spec)
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != 44 {
			t.Fatalf("length %d", len(pw))
		}
		if count(pw, upperChars) < 4 || count(pw, lowerChars) < 4 || count(pw, numericChars) < 4 {
			t.Fatalf("minimums not met: %q", pw)
		}
		if count(pw, upperChars+lowerChars+numericChars) != 44 {
			t.Fatalf("special characters with special=false: %q", pw)
		}
		if seen[pw] {
			t.Fatalf("repeated password %q", pw)
		}
		seen[pw] = true
	}
}

func TestPasswordAllMinimumsExactLength(t *testing.T) {
	o := "#%"
	spec := passwordSpec{Length: 8, Upper: true, Lower: true, Numeric: true, Special: true, MinUpper: 2, MinLower: 2, MinNumeric: 2, MinSpecial: 2, OverrideSpecial: &o}
	for i := 0; i < 200; i++ {
		pw, err := generatePassword(spec)
		if err != nil {
			t.Fatal(err)
		}
		if count(pw, upperChars) != 2 || count(pw, lowerChars) != 2 || count(pw, numericChars) != 2 || count(pw, o) != 2 {
			t.Fatalf("wrong class counts: %q", pw)
		}
	}
}

func TestPasswordOverrideSpecialOnly(t *testing.T) {
	o := "!"
	pw, err := generatePassword(passwordSpec{Length: 30, Special: true, OverrideSpecial: &o})
	if err != nil {
		t.Fatal(err)
	}
	if pw != strings.Repeat("!", 30) {
		t.Fatalf("got %q", pw)
	}
}

func TestPasswordErrors(t *testing.T) {
	if _, err := generatePassword(passwordSpec{Length: 3, Upper: true, Lower: true, MinUpper: 2, MinLower: 2}); err == nil {
		t.Fatal("minimums above length accepted")
	}
	if _, err := generatePassword(passwordSpec{Length: 3}); err == nil {
		t.Fatal("no class accepted")
	}
}

// Every character of a 26-letter class shows up with roughly equal frequency (no modulo bias).
func TestPasswordUniform(t *testing.T) {
	counts := map[rune]int{}
	const n = 200
	for i := 0; i < n; i++ {
		pw, _ := generatePassword(passwordSpec{Length: 130, Lower: true})
		for _, r := range pw {
			counts[r]++
		}
	}
	exp := float64(n*130) / 26
	for _, r := range lowerChars {
		if c := float64(counts[r]); c < exp*0.85 || c > exp*1.15 {
			t.Fatalf("%c: %v draws, expected about %v", r, c, exp)
		}
	}
}

func TestDefaultsAndGenerate(t *testing.T) {
	in := resource.PropertyMap{"length": resource.NewNumberProperty(44), "special": resource.NewBoolProperty(false), "minUpper": resource.NewNumberProperty(4)}
	applyPasswordDefaults(in)
	for _, k := range []resource.PropertyKey{"upper", "lower", "numeric", "number"} {
		if !in[k].IsBool() || !in[k].BoolValue() {
			t.Fatalf("%s not defaulted to true: %v", k, in[k])
		}
	}
	if in["special"].BoolValue() {
		t.Fatal("special overridden")
	}
	_, out, err := passwordResource{}.Create(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out["result"].StringValue()) != 44 || !strings.HasPrefix(out["bcryptHash"].StringValue(), "$2a$") {
		t.Fatalf("outputs: %v", out)
	}
	_, b, err := bytesResource{}.Create(context.Background(), resource.PropertyMap{"length": resource.NewNumberProperty(64)})
	if err != nil {
		t.Fatal(err)
	}
	if len(b["hex"].StringValue()) != 128 || len(b["base64"].StringValue()) != 88 {
		t.Fatalf("bytes outputs: %v", b)
	}
}
