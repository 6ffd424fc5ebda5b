package integration

import (
	"fmt"
	"net/url"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// TestQuickstartFlow: a client_credentials token reaches the upstream as
// the client's user, and a forged X-User-ID never does.
func TestQuickstartFlow(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(`
oauth {
	store memory
	client svc {
		secret svc-secret
		grants client_credentials
		scopes read
		user service-7
	}
}`, fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())))

	tok := gt.PostForm(t, g.URL+"/oauth/token", "svc", "svc-secret", url.Values{"grant_type": {"client_credentials"}})
	if tok.Status != 200 || tok.Str("access_token") == "" {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}
	r := gt.Get(t, g.URL+"/api", tok.Str("access_token"), "X-User-ID", "admin", "x_user_id", "admin")
	if r.Status != 200 {
		t.Fatalf("protected call: %d %s", r.Status, r.Body)
	}
	h := up.Last()
	if got := h.Values("X-User-Id"); len(got) != 1 || got[0] != "service-7" {
		t.Fatalf("upstream X-User-ID = %v, want [service-7]", got)
	}
	for k := range h {
		if k != "X-User-Id" && normalized(k) == "x-user-id" {
			t.Fatalf("upstream received forged header %q", k)
		}
	}
}

func normalized(k string) string {
	out := []byte(k)
	for i, c := range out {
		if c == '_' {
			out[i] = '-'
		}
		if 'A' <= c && c <= 'Z' {
			out[i] = c + 32
		}
	}
	return string(out)
}
