package authz

import "testing"

// TestMatchRedirectURI: registered redirect URIs match exactly, except
// that a loopback one of a client with LoopbackAnyPort takes any port
// (RFC 8252 §7.3), and only its port may differ.
func TestMatchRedirectURI(t *testing.T) {
	registered := []string{"http://127.0.0.1/cb", "http://[::1]:8080/cb?x=1", "http://localhost:3000/", "https://app.example.com/cb", "com.example.app:/cb"}
	native := &Client{RedirectURIs: registered, LoopbackAnyPort: true}
	exact := &Client{RedirectURIs: registered}
	for _, tc := range []struct {
		uri, want string
		anyPort   bool // matches only with LoopbackAnyPort
	}{
		{"http://127.0.0.1/cb", "http://127.0.0.1/cb", false},
		{"http://127.0.0.1:53124/cb", "http://127.0.0.1/cb", true},
		{"http://[::1]/cb?x=1", "http://[::1]:8080/cb?x=1", true},
		{"http://[::1]:1/cb?x=1", "http://[::1]:8080/cb?x=1", true},
		{"http://localhost:9/", "http://localhost:3000/", true},
		{"https://app.example.com/cb", "https://app.example.com/cb", false},
		{"com.example.app:/cb", "com.example.app:/cb", false},
		{"http://127.0.0.1:53124/cb2", "", false},
		{"http://127.0.0.1:53124/cb?x", "", false},
		{"http://127.0.0.1:53124/cb#f", "", false},
		{"http://127.0.0.1:/cb", "", false},
		{"http://127.0.0.1:123456/cb", "", false},
		{"http://127.0.0.1:1a/cb", "", false},
		{"http://127.0.0.1:80@evil.example/cb", "", false},
		{"http://127.0.0.1.evil.example/cb", "", false},
		{"http://localhost:3000@evil.example/", "", false},
		{"http://LOCALHOST:3000/", "", false},
		{"http://[::1]:8080/cb", "", false},
		{"https://127.0.0.1:1/cb", "", false},
		{"http://app.example.com:1/cb", "", false},
		{"https://app.example.com:8443/cb", "", false},
	} {
		got, ok := native.MatchRedirectURI(tc.uri)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("native %q: %q %v, want %q", tc.uri, got, ok, tc.want)
		}
		got, ok = exact.MatchRedirectURI(tc.uri)
		if want := tc.want != "" && !tc.anyPort; ok != want || (ok && got != tc.uri) {
			t.Errorf("exact %q: %q %v", tc.uri, got, ok)
		}
		// The token endpoint's check (through go-oauth2) agrees.
		if err := exactRedirectURI(native.GetDomain(), tc.uri); (err == nil) != (tc.want != "") {
			t.Errorf("exactRedirectURI native %q: %v", tc.uri, err)
		}
		if err := exactRedirectURI(exact.GetDomain(), tc.uri); (err == nil) != (tc.want != "" && !tc.anyPort) {
			t.Errorf("exactRedirectURI exact %q: %v", tc.uri, err)
		}
	}
}
