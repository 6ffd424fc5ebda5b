package authz

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadFormBounds(t *testing.T) {
	var many strings.Builder // MaxFormParams+1 distinct names
	for i := 0; i <= MaxFormParams; i++ {
		fmt.Fprintf(&many, "p%d=1&", i)
	}
	cases := []struct {
		name, body string
		ok         bool
	}{
		{"plain", "grant_type=client_credentials&scope=read", true},
		{"duplicate", "scope=a&scope=b", false},
		{"duplicate, one empty", "scope=&scope=b", false},
		{"too many parameters", strings.TrimSuffix(many.String(), "&"), false},
		{"long name", strings.Repeat("n", MaxFormNameLength+1) + "=1", false},
		{"name at its bound", strings.Repeat("n", MaxFormNameLength) + "=1", true},
		{"long value", "code=" + strings.Repeat("v", MaxFormValueLength+1), false},
		{"value at its bound", "code=" + strings.Repeat("v", MaxFormValueLength), true},
		{"bad escape", "a=%zz", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadForm(httptest.NewRecorder(), newFormRequest("/oauth/token", c.body), 64<<10)
			if (err == nil) != c.ok {
				t.Fatalf("ReadForm error = %v, want ok=%v", err, c.ok)
			}
			if err != nil {
				if e := asOAuthError(err); e.Code != "invalid_request" || e.Status != 400 {
					t.Fatalf("error = %+v, want invalid_request 400", e)
				}
			}
		})
	}
	// Distinct names up to the bound are fine.
	var b strings.Builder
	for i := 0; i < MaxFormParams; i++ {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString("p" + strings.Repeat("x", i) + "=1")
	}
	if _, err := ReadForm(httptest.NewRecorder(), newFormRequest("/oauth/token", b.String()), 64<<10); err != nil {
		t.Fatalf("%d distinct parameters refused: %v", MaxFormParams, err)
	}
	if _, err := ReadForm(httptest.NewRecorder(), newFormRequest("/oauth/token", strings.Repeat("x", 100)), 50); err == nil {
		t.Fatal("a body over the limit was read")
	}
}
