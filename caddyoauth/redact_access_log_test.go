package caddyoauth

import (
	"net/url"
	"strings"
	"testing"
)

func TestRedactURI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/oauth/token", ""},
		{"/api?page=2&sort=name", ""},
		{"/api?password", ""}, // a name without a value hides nothing
		{"/oauth/token?grant_type=password&password=hunter2", "/oauth/token?grant_type=password&password=REDACTED"},
		{"/x?code=abc&state=s", "/x?code=REDACTED&state=s"},
		{"/x?state=s&CODE=abc", "/x?state=s&CODE=REDACTED"},
		{"/x?a=1;access_token=t;b=2", "/x?a=1;access_token=REDACTED;b=2"},
		{"/x?client%5Fsecret=s&client_secret=t", "/x?client%5Fsecret=REDACTED&client_secret=REDACTED"},
		{"/x?refresh%zztoken=s", "/x?refresh%zztoken=REDACTED"}, // undecodable name
		{"/x?token=", "/x?token=REDACTED"},
		{"/x?id_token_hint=h&&code_verifier=v&", "/x?id_token_hint=REDACTED&&code_verifier=REDACTED&"},
		{"/x?client_assertion=a=b", "/x?client_assertion=REDACTED"},
	}
	for _, tc := range tests {
		got, found := redactURI(tc.in)
		want := tc.want
		if want == "" {
			want = tc.in
		}
		if got != want || found != (tc.want != "") {
			t.Errorf("redactURI(%q) = %q, %v; want %q, %v", tc.in, got, found, want, tc.want != "")
		}
	}
}

// FuzzRedactURI: whatever the query, no credential parameter of the
// redacted URI keeps a value, and redacting changes nothing else.
func FuzzRedactURI(f *testing.F) {
	for _, s := range []string{"/a?code=x", "/a?b=1&password=p;token=t", "/a?%zz=1&code", "/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		got, found := redactURI(uri)
		if !found {
			if got != uri || (strings.Contains(uri, "?") && hasCredential(uri[strings.IndexByte(uri, '?')+1:])) {
				t.Fatalf("redactURI(%q) found nothing but changed or missed it: %q", uri, got)
			}
			return
		}
		q := strings.IndexByte(got, '?')
		if got[:q] != uri[:q] {
			t.Fatalf("the path changed: %q -> %q", uri, got)
		}
		for _, pair := range strings.FieldsFunc(got[q+1:], func(r rune) bool { return r == '&' || r == ';' }) {
			name, value, ok := strings.Cut(pair, "=")
			if ok && isCredentialParam(name) && value != redactedValue {
				t.Fatalf("redactURI(%q) = %q keeps %q", uri, got, pair)
			}
			if n, err := url.QueryUnescape(name); err == nil && !isCredentialParam(name) && !strings.Contains(uri, pair) {
				t.Fatalf("redactURI(%q) = %q changed %q (%s)", uri, got, pair, n)
			}
		}
	})
}
