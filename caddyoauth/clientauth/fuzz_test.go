package clientauth

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzVerifyAssertion: whatever a client sends, VerifyAssertion refuses
// it with an *Error, never a panic, unless the client's key signed it.
func FuzzVerifyAssertion(f *testing.F) {
	key := newTestKey(f, "ES256", "k1")
	now := time.Now()
	f.Add(key.sign(f, nil, goodClaims(now)))
	f.Add(unsigned(goodClaims(now)))
	f.Add(hmacSigned([]byte("k"), goodClaims(now)))
	f.Add("e30.e30.")
	f.Add("..")
	v, _ := newTestVerifier(f, Options{})
	c := inlineClient(f, key)
	f.Fuzz(func(t *testing.T, assertion string) {
		err := v.VerifyAssertion(context.Background(), c, assertion, testIssuer)
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("not a refusal: %v", err)
		}
		_, _ = Subject(assertion)
	})
}

// FuzzParseDN: any string parses or is refused, and a parsed DN has RDNs
// of at least one attribute each.
func FuzzParseDN(f *testing.F) {
	for _, s := range []string{`CN=a\+b+UID=x\41, O=\"Q\"\\ ,C=US`, "CN=a", "1.2.3=x", `CN=\`, "CN=#00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dn, err := parseDN(s)
		if err != nil {
			return
		}
		if len(dn) == 0 {
			t.Fatal("an empty DN parsed")
		}
		for _, rdn := range dn {
			if len(rdn) == 0 {
				t.Fatal("an empty RDN parsed")
			}
		}
	})
}
