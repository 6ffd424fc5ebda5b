package selfservice

import "testing"

// TestSafeNext: the page a sign-in returns to is cleaned and stays under
// Path; anything else, or anything with characters other than printable
// ASCII, backslashes, a query or a fragment, returns to Path itself.
func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"":                         Path,
		"/oauth/apps":              Path,
		"/oauth/apps/":             Path,
		"/oauth/apps/c_1":          "/oauth/apps/c_1",
		"/oauth/apps/./c_1/":       "/oauth/apps/c_1",
		"/oauth/apps/../../evil":   Path,
		"/oauth/apps/x/../../evil": Path,
		"/oauth/apps/../apps/c_1":  "/oauth/apps/c_1",
		"/oauth/appsevil":          Path,
		"//evil.example.com":       Path,
		"/oauth/apps//evil":        "/oauth/apps/evil",
		"https://evil.example.com": Path,
		"/oauth/apps\\..\\evil":    Path,
		"/oauth/apps/x\ty":         Path,
		"/oauth/apps/x\x00":        Path,
		"/oauth/apps/x\u2028":      Path,
		"/oauth/apps/x y":          Path,
		"/oauth/apps/x\u0085":      Path,
		"/oauth/apps?next=//evil":  Path,
		"oauth/apps":               Path,
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
