package clients

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRedirectURICheck: CheckRedirectURI never panics and never accepts a
// URI with a fragment, a relative one, or plain http to a host other than
// loopback.
func FuzzRedirectURICheck(f *testing.F) {
	for _, s := range []string{"https://zapier.com/dashboard/auth/oauth/return/App123CLIAPI/", "http://localhost:8080/cb",
		"http://evil.example/cb", "https://a.example/cb#frag", "/relative", "com.example.app:/cb", "javascript:alert(1)",
		"http://127.0.0.1.evil.example/", "HTTPS://A.EXAMPLE/", "https://[::1]:80/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if err := CheckRedirectURI(raw); err != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() || strings.Contains(raw, "#") {
			t.Fatalf("CheckRedirectURI accepted %q", raw)
		}
		if u.Scheme == "http" {
			if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
				t.Fatalf("CheckRedirectURI accepted http to %q", h)
			}
		}
	})
}
