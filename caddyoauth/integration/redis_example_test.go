package integration

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// TestRedisExample runs examples/redis.Caddyfile as the README shows: two
// instances, each with its own GATEWAY_PORT and ADMIN_ADDR, on one Redis.
// A token issued by one works on the other. The file is also `caddy fmt`
// clean.
func TestRedisExample(t *testing.T) {
	path := filepath.Join(gt.RepoRoot(), "examples", "redis.Caddyfile")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gt.Binary(t), "fmt", path).Output()
	if err != nil {
		t.Fatalf("caddy fmt: %v", err)
	}
	if string(out) != string(src) {
		t.Fatalf("examples/redis.Caddyfile is not `caddy fmt` clean:\n%s", out)
	}

	srv := testredis.Start(t)
	instance := gt.WithEnvFunc(func(p gt.Params) []string {
		return []string{
			"GATEWAY_PORT=" + strconv.Itoa(p.Port),
			"ADMIN_ADDR=" + p.Admin,
			"REDIS_URL=" + srv.URL(),
			"DEMO_CLIENT_SECRET=demo-secret",
		}
	})
	a := gt.Start(t, string(src), instance)
	b := gt.Start(t, string(src), instance)

	tok := gt.PostForm(t, a.URL+"/oauth/token", "demo-client", "demo-secret", url.Values{"grant_type": {"client_credentials"}})
	if tok.Status != 200 {
		t.Fatalf("token from the first instance: %d %s", tok.Status, tok.Body)
	}
	r := gt.Get(t, b.URL+"/hello", tok.Str("access_token"))
	if r.Status != 200 || !strings.Contains(string(r.Body), "user=service-account client=demo-client") {
		t.Fatalf("the second instance: %d %s", r.Status, r.Body)
	}
	if r := gt.Get(t, b.URL+"/hello", ""); r.Status != 401 {
		t.Fatalf("no token: %d", r.Status)
	}
}
