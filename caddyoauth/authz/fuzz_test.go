package authz

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzParseScope: ParseScope never panics, and what it accepts joins back
// into a string it accepts again, with every token valid and none twice.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "read", "read write", "read  write", " read", "a\"b", "ü", "read read", "a\\b", "x\ty"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, ok := ParseScope(s)
		if !ok {
			return
		}
		seen := map[string]bool{}
		for _, tok := range toks {
			if !validScopeToken(tok) || seen[tok] {
				t.Fatalf("ParseScope(%q) = %q: bad or repeated token %q", s, toks, tok)
			}
			seen[tok] = true
		}
		again, ok := ParseScope(JoinScope(toks))
		if !ok || JoinScope(again) != JoinScope(toks) {
			t.Fatalf("ParseScope(%q) does not round-trip: %q then %q", s, toks, again)
		}
		if !HasScopes(JoinScope(toks), toks) {
			t.Fatalf("HasScopes of its own tokens is false for %q", s)
		}
	})
}

// FuzzReadForm: ReadForm never panics on any body, refuses with
// invalid_request only, and what it accepts respects every bound.
func FuzzReadForm(f *testing.F) {
	for _, s := range []string{"", "a=1", "a=1&a=2", "a=%zz", "grant_type=password&username=u&password=p",
		strings.Repeat("x=1&", 40), "=&=&", "a;b=1", "%00=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := ReadForm(httptest.NewRecorder(), formRequest(body), MaxTokenRequestBody)
		if err != nil {
			if e := asOAuthError(err); e.Code != "invalid_request" || e.Status != 400 {
				t.Fatalf("ReadForm(%q) error %+v, want invalid_request 400", body, e)
			}
			return
		}
		if len(form) > MaxFormParams {
			t.Fatalf("ReadForm accepted %d parameters", len(form))
		}
		for name, vals := range form {
			if len(vals) != 1 || len(name) > MaxFormNameLength || len(vals[0]) > MaxFormValueLength {
				t.Fatalf("ReadForm accepted %q = %q", name, vals)
			}
		}
	})
}

// FuzzRedirectURI: the redirect URI check accepts a URI only when it is
// byte-for-byte one of the registered ones: no prefix, suffix, case or
// host-suffix match.
func FuzzRedirectURI(f *testing.F) {
	f.Add("https://a.example.com/cb\nhttps://b.example.com/cb", "https://a.example.com/cb")
	f.Add("https://a.example.com/cb", "https://evil-a.example.com/cb")
	f.Add("https://a.example.com/cb", "https://a.example.com/cb/../x")
	f.Add("https://a.example.com", "HTTPS://A.EXAMPLE.COM")
	f.Add("\n\n", "")
	f.Fuzz(func(t *testing.T, registered, uri string) {
		err := exactRedirectURI(registered, uri)
		listed := false
		for _, r := range strings.Split(registered, "\n") {
			listed = listed || (r != "" && r == uri)
		}
		if (err == nil) != listed {
			t.Fatalf("exactRedirectURI(%q, %q) = %v, but listed = %v", registered, uri, err, listed)
		}
	})
}
