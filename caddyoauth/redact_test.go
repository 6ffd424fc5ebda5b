package caddyoauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestServeRedacted: the client receives the authorization code in the
// Location it was sent, while the header map Caddy's access log reads
// afterwards holds it no more; other answers are left alone.
func TestServeRedacted(t *testing.T) {
	redirect := func(loc string, status int) func(http.ResponseWriter) error {
		return func(w http.ResponseWriter) error {
			w.Header().Set("Location", loc)
			w.WriteHeader(status)
			return nil
		}
	}
	rec := httptest.NewRecorder()
	if err := serveRedacted(redirect("https://app.example/cb?code=SECRET123&state=s", http.StatusSeeOther), rec); err != nil {
		t.Fatal(err)
	}
	if got := rec.Result().Header.Get("Location"); got != "https://app.example/cb?code=SECRET123&state=s" {
		t.Fatalf("the client got Location %q", got)
	}
	if got := rec.Header().Get("Location"); strings.Contains(got, "SECRET123") || !strings.Contains(got, "code=REDACTED") || !strings.Contains(got, "state=s") {
		t.Fatalf("the logged Location is %q", got)
	}
	for _, c := range []struct {
		loc    string
		status int
	}{
		{"https://app.example/cb?error=access_denied&state=s", http.StatusFound},
		{"/oauth/login?request_id=abc", http.StatusSeeOther},
		{"https://app.example/cb?code=SECRET123", http.StatusOK}, // not a redirect
	} {
		rec := httptest.NewRecorder()
		_ = serveRedacted(redirect(c.loc, c.status), rec)
		if got := rec.Header().Get("Location"); got != c.loc {
			t.Errorf("Location %q became %q", c.loc, got)
		}
	}
}
