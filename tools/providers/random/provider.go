package main

// pulumi-resource-random: the two resources of @pulumi/random 4.21.2 that this project uses, with
// the upstream type tokens and property names (the schemas below list every property implemented).
// Every input change replaces (as upstream). The schema marks result/bcryptHash/hex/base64 secret,
// as the SDK's additionalSecretOutputs do, so the engine stores them encrypted.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/bcrypt"
)

const (
	pluginVersion    = "4.21.2"
	tokenPassword    = "random:index/randomPassword:RandomPassword"
	tokenBytes       = "random:index/randomBytes:RandomBytes"
	passwordBcryptOK = 72 // bcrypt hashes at most 72 bytes
)

var (
	strProp  = pluginkit.String
	intProp  = pluginkit.Integer
	boolProp = pluginkit.Boolean
)

var keepers = pluginkit.MapOf(strProp()).Doc("Arbitrary values that, when changed, replace the resource.")

func newProvider() *pluginkit.Provider {
	return pluginkit.NewProvider("random", pluginVersion,
		"This repo's own random provider (tools/providers/random): RandomPassword and RandomBytes.",
		nil,
		&pluginkit.Type{
			Token:       tokenPassword,
			Description: "A random password from crypto/rand: uniform draws, the minimums first, then shuffled.",
			Inputs: pluginkit.Props{
				"length":          intProp().Doc("Length of the password (at least 1, and at least the sum of the minimums)."),
				"upper":           boolProp().Doc("Include upper-case letters (default true)."),
				"lower":           boolProp().Doc("Include lower-case letters (default true)."),
				"numeric":         boolProp().Doc("Include digits (default true)."),
				"number":          boolProp().Doc("Deprecated alias of numeric."),
				"special":         boolProp().Doc("Include special characters (default true)."),
				"minUpper":        intProp().Doc("Minimum number of upper-case letters (default 0)."),
				"minLower":        intProp().Doc("Minimum number of lower-case letters (default 0)."),
				"minNumeric":      intProp().Doc("Minimum number of digits (default 0)."),
				"minSpecial":      intProp().Doc("Minimum number of special characters (default 0)."),
				"overrideSpecial": strProp().Doc("The special characters to use instead of the default set."),
				"keepers":         keepers,
			},
			Outputs: pluginkit.Props{
				"result":     strProp().AsSecret().Doc("The generated password."),
				"bcryptHash": strProp().AsSecret().Doc("bcrypt hash (cost 10) of the password; absent above 72 bytes."),
			},
			RequiredInputs:  []string{"length"},
			RequiredOutputs: []string{"result", "upper", "lower", "numeric", "number", "special", "minUpper", "minLower", "minNumeric", "minSpecial"},
			Resource:        passwordResource{},
		},
		&pluginkit.Type{
			Token:       tokenBytes,
			Description: "Random bytes from crypto/rand.",
			Inputs: pluginkit.Props{
				"length":  intProp().Doc("Number of bytes (at least 1)."),
				"keepers": keepers,
			},
			Outputs: pluginkit.Props{
				"hex":    strProp().AsSecret().Doc("The bytes in lower-case hexadecimal."),
				"base64": strProp().AsSecret().Doc("The bytes in standard base64."),
			},
			RequiredInputs:  []string{"length"},
			RequiredOutputs: []string{"hex", "base64"},
			Resource:        bytesResource{},
		},
	)
}

// stored: the values exist only in the state, so Read returns it as it is and Delete has nothing to do.
type stored struct{}

func (stored) Read(_ context.Context, _ string, state resource.PropertyMap) (bool, resource.PropertyMap, error) {
	return true, state, nil
}

func (stored) Delete(context.Context, string, resource.PropertyMap) error { return nil }

func checkLength(m resource.PropertyMap) []*pulumirpc.CheckFailure {
	if l, ok := pluginkit.PV(m, "length"); ok && l.IsNumber() && l.NumberValue() < 1 {
		return []*pulumirpc.CheckFailure{{Property: "length", Reason: "length must be at least 1"}}
	}
	return nil
}

type passwordResource struct{ stored }

// applyPasswordDefaults fills the inputs as upstream's Check does.
func applyPasswordDefaults(m resource.PropertyMap) {
	// "number" is the deprecated alias of "numeric".
	if v, ok := m["number"]; ok && !v.IsNull() {
		pluginkit.SetDefault(m, "numeric", v)
	}
	for _, k := range []string{"upper", "lower", "numeric", "special"} {
		pluginkit.SetDefault(m, k, resource.NewBoolProperty(true))
	}
	if v, ok := m["numeric"]; ok {
		pluginkit.SetDefault(m, "number", v)
	}
	for _, k := range []string{"minUpper", "minLower", "minNumeric", "minSpecial"} {
		pluginkit.SetDefault(m, k, resource.NewNumberProperty(0))
	}
}

func (passwordResource) Check(_ context.Context, m resource.PropertyMap) []*pulumirpc.CheckFailure {
	applyPasswordDefaults(m)
	f := checkLength(m)
	if len(f) == 0 && !m.ContainsUnknowns() && pluginkit.GetInt(m, "length", 0) > 0 {
		if _, err := generatePassword(specOf(m)); err != nil {
			f = append(f, &pulumirpc.CheckFailure{Property: "length", Reason: err.Error()})
		}
	}
	return f
}

// NormalizeOldInputs: "number" mirrors "numeric"; states written before that default carry only one of them.
func (passwordResource) NormalizeOldInputs(olds resource.PropertyMap) { applyPasswordDefaults(olds) }

func specOf(m resource.PropertyMap) passwordSpec {
	s := passwordSpec{
		Length:     pluginkit.GetInt(m, "length", 0),
		Upper:      pluginkit.GetBool(m, "upper", true),
		Lower:      pluginkit.GetBool(m, "lower", true),
		Numeric:    pluginkit.GetBool(m, "numeric", pluginkit.GetBool(m, "number", true)),
		Special:    pluginkit.GetBool(m, "special", true),
		MinUpper:   pluginkit.GetInt(m, "minUpper", 0),
		MinLower:   pluginkit.GetInt(m, "minLower", 0),
		MinNumeric: pluginkit.GetInt(m, "minNumeric", 0),
		MinSpecial: pluginkit.GetInt(m, "minSpecial", 0),
	}
	if v, ok := pluginkit.PV(m, "overrideSpecial"); ok && v.IsString() {
		o := v.StringValue()
		s.OverrideSpecial = &o
	}
	return s
}

func (passwordResource) Create(_ context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error) {
	pw, err := generatePassword(specOf(in))
	if err != nil {
		return "", nil, err
	}
	out := in.Copy()
	out["result"] = resource.NewStringProperty(pw)
	if len(pw) <= passwordBcryptOK {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
		if err != nil {
			return "", nil, err
		}
		out["bcryptHash"] = resource.NewStringProperty(string(h))
	}
	return "none", out, nil
}

type bytesResource struct{ stored }

func (bytesResource) Check(_ context.Context, m resource.PropertyMap) []*pulumirpc.CheckFailure {
	return checkLength(m)
}

func (bytesResource) Create(_ context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error) {
	n := pluginkit.GetInt(in, "length", 0)
	if n < 1 {
		return "", nil, fmt.Errorf("length must be at least 1")
	}
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", nil, err
	}
	out := in.Copy()
	out["hex"] = resource.NewStringProperty(hex.EncodeToString(buf))
	out["base64"] = resource.NewStringProperty(base64.StdEncoding.EncodeToString(buf))
	return "none", out, nil
}
