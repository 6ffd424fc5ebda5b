package integration

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// exampleEnv holds the {env.X} secrets the examples read.
var exampleEnv = map[string]string{
	"REPORTING_SECRET":     "reporting-example-secret",
	"ZAPIER_CLIENT_SECRET": "zapier-example-secret",
	"SECRET":               "cluster-example-secret",
	"WEB_CLIENT_SECRET":    "web-example-secret",
	"AGENT_SECRET":         "agent-example-secret",
}

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(gt.RepoRoot(), "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replaceOnce replaces old by new in s, failing when old is not there
// exactly once: a changed example must not silently escape its test.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("the example holds %q %d times, want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// TestExamplesAdapt: every example is `caddy fmt`-clean, and the gateway
// binary adapts, provisions and validates it (`caddy validate`), with its
// secrets given in the environment. The cluster example is validated
// against a real Redis, since its store connects when provisioned.
func TestExamplesAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(gt.RepoRoot(), "examples", "*", "Caddyfile*"))
	if err != nil || len(files) < 5 {
		t.Fatalf("examples: %v, %v", files, err)
	}
	for k, v := range exampleEnv {
		t.Setenv(k, v)
	}
	rs := testredis.Start(t)
	for _, path := range files {
		name, _ := filepath.Rel(filepath.Join(gt.RepoRoot(), "examples"), path)
		t.Run(name, func(t *testing.T) {
			body := readExample(t, name)
			if formatted := string(caddyfile.Format([]byte(body))); formatted != body {
				t.Fatalf("not caddy fmt-clean; caddy fmt gives:\n%s", formatted)
			}
			if name == "cluster/Caddyfile" {
				body = replaceOnce(t, body, "redis://127.0.0.1:6379/0", rs.URL())
			}
			tmp := filepath.Join(t.TempDir(), "Caddyfile")
			if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			out, ok := gt.ValidateConfig(t, tmp)
			if !ok || !strings.Contains(out, "Valid configuration") {
				t.Fatalf("caddy validate failed:\n%s", out)
			}
			if strings.Contains(out, "not formatted") {
				t.Fatalf("the adapter warns:\n%s", out)
			}
		})
	}
}

// TestExampleLegacyAPI runs the legacy-api example: each route needs its
// scope, and the legacy API gets the token's user in X-User-ID, never the
// caller's.
func TestExampleLegacyAPI(t *testing.T) {
	up := gt.StartUpstream(t)
	cfg := readExample(t, "legacy-api/Caddyfile")
	cfg = replaceOnce(t, cfg, "{\n\toauth {", "{\n\tadmin {{.Admin}}\n\tpersist_config off\n\tgrace_period 1ns\n\toauth {\n\t\tstore memory")
	cfg = replaceOnce(t, cfg, "http://localhost:8080 {", "http://{{.Addr}} {")
	cfg = strings.ReplaceAll(cfg, "reverse_proxy localhost:9000", "reverse_proxy "+up.Addr())
	g := gt.Start(t, cfg, gt.WithEnv("REPORTING_SECRET="+exampleEnv["REPORTING_SECRET"]))

	tok := gt.PostForm(t, g.URL+"/oauth/token", "reporting", exampleEnv["REPORTING_SECRET"], url.Values{"grant_type": {"client_credentials"}})
	if tok.Status != 200 {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}
	at := tok.Str("access_token")
	if r := gt.Get(t, g.URL+"/orders/7", at, "X-User-ID", "admin"); r.Status != 200 {
		t.Fatalf("GET /orders/7 with orders:read: %d %s", r.Status, r.Body)
	}
	if got := up.Last().Values("X-User-Id"); len(got) != 1 || got[0] != "reporting-bot" {
		t.Fatalf("legacy API got X-User-ID %v, want [reporting-bot]", got)
	}
	n := up.Count()
	req := gt.PostForm(t, g.URL+"/orders", "", "", url.Values{"item": {"x"}})
	if req.Status != 401 {
		t.Fatalf("POST /orders without a token: %d", req.Status)
	}
	for _, c := range []struct{ method, path string }{{"POST", "/orders"}, {"DELETE", "/orders/7"}, {"GET", "/profile"}} {
		r := doWithToken(t, c.method, g.URL+c.path, at)
		if r.Status != 403 || !strings.Contains(r.Header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Fatalf("%s %s without its scope: %d %q", c.method, c.path, r.Status, r.Header.Get("WWW-Authenticate"))
		}
	}
	if r := gt.Get(t, g.URL+"/status", at); r.Status != 200 {
		t.Fatalf("GET /status with any valid token: %d", r.Status)
	}
	if up.Count() != n+1 {
		t.Fatalf("the legacy API got %d requests, want only the one to /status", up.Count()-n)
	}
}

// TestExampleCluster runs the cluster example as it says: two gateways on
// one Redis behind the load balancer of Caddyfile.lb. A token issued
// through the balancer works on both gateways.
func TestExampleCluster(t *testing.T) {
	rs := testredis.Start(t)
	up := gt.StartUpstream(t)
	node := readExample(t, "cluster/Caddyfile")
	node = replaceOnce(t, node, "admin localhost:{$ADMIN_PORT:2019}", "admin {{.Admin}}\n\tpersist_config off\n\tgrace_period 1ns")
	node = replaceOnce(t, node, "redis://127.0.0.1:6379/0", rs.URL())
	node = replaceOnce(t, node, "http://localhost:{$GATEWAY_PORT:8081} {", "http://{{.Addr}} {")
	node = replaceOnce(t, node, "reverse_proxy localhost:9000", "reverse_proxy "+up.Addr())
	env := gt.WithEnv("SECRET=" + exampleEnv["SECRET"])
	g1, g2 := gt.Start(t, node, env), gt.Start(t, node, env)

	lbCfg := readExample(t, "cluster/Caddyfile.lb")
	lbCfg = replaceOnce(t, lbCfg, "admin localhost:2022", "admin {{.Admin}}\n\tpersist_config off\n\tgrace_period 1ns")
	lbCfg = replaceOnce(t, lbCfg, "http://localhost:8080 {", "http://{{.Addr}} {")
	lbCfg = replaceOnce(t, lbCfg, "reverse_proxy localhost:8081 localhost:8082 {", "reverse_proxy "+g1.Params.Addr+" "+g2.Params.Addr+" {")
	lb := gt.Start(t, lbCfg)

	tok := gt.PostForm(t, lb.URL+"/oauth/token", "backend", exampleEnv["SECRET"], url.Values{"grant_type": {"client_credentials"}})
	if tok.Status != 200 {
		t.Fatalf("token through the balancer: %d %s", tok.Status, tok.Body)
	}
	for i, g := range []*gt.Gateway{g1, g2} {
		if r := gt.Get(t, g.URL+"/data", tok.Str("access_token")); r.Status != 200 {
			t.Fatalf("the token on gateway %d: %d %s", i+1, r.Status, r.Body)
		}
		if got := up.Last().Get("X-User-Id"); got != "backend-service" {
			t.Fatalf("gateway %d sent X-User-ID %q", i+1, got)
		}
	}
	for i := 0; i < 4; i++ {
		if r := gt.Get(t, lb.URL+"/data", tok.Str("access_token")); r.Status != 200 {
			t.Fatalf("call %d through the balancer: %d %s", i+1, r.Status, r.Body)
		}
	}
}

func doWithToken(t *testing.T, method, target, token string) *gt.Response {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader("item=x"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	return gt.Do(t, req)
}

// TestExampleJSON: the README's JSON config is examples/json/caddy.json,
// and the gateway binary provisions and validates it.
func TestExampleJSON(t *testing.T) {
	body := readExample(t, "json/caddy.json")
	readme, err := os.ReadFile(filepath.Join(gt.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```json\n"+body+"```\n") {
		t.Fatal("README.md does not show examples/json/caddy.json as its JSON config")
	}
	t.Setenv("REPORTING_SECRET", exampleEnv["REPORTING_SECRET"])
	out, ok := gt.ValidateConfig(t, filepath.Join(gt.RepoRoot(), "examples", "json", "caddy.json"))
	if !ok || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("caddy validate failed:\n%s", out)
	}
}

// TestExampleDPoP runs the dpop example as its README section shows: its
// Node client gets a DPoP-bound token and calls the API through the
// gateway; the token as a bearer token and a proof sent twice are refused,
// and the upstream never sees a proof.
func TestExampleDPoP(t *testing.T) {
	cfg := readExample(t, "dpop/Caddyfile")
	cfg = replaceOnce(t, cfg, "{\n\toauth {", "{\n\tadmin {{.Admin}}\n\tpersist_config off\n\tgrace_period 1ns\n\toauth {")
	cfg = replaceOnce(t, cfg, "http://localhost:8080 {", "http://{{.Addr}} {")
	upstream := "127.0.0.1:" + strconv.Itoa(gt.FreePort(t))
	cfg = replaceOnce(t, cfg, "reverse_proxy localhost:9000", "reverse_proxy "+upstream)
	cfg = replaceOnce(t, cfg, "http://localhost:9000 {", "http://"+upstream+" {")
	g := gt.Start(t, cfg, gt.WithEnv("AGENT_SECRET="+exampleEnv["AGENT_SECRET"]))

	dir := nodeClient(t, filepath.Join(gt.RepoRoot(), "examples", "dpop"))
	cmd := exec.Command("node", "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ISSUER="+g.URL, "AGENT_SECRET="+exampleEnv["AGENT_SECRET"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the example's client failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{
		"token_type dpop, cnf.jkt ", // oauth4webapi writes it in lower case
		"GET /hello with a proof: 200 user=agent-service client=agent dpop=",
		`the same token as a bearer token: 401 DPoP realm="api", resource_metadata=`,
		"the proof: 200 user=agent-service client=agent dpop=",
		`the same proof again: 401 DPoP realm="api", resource_metadata=`,
	}
	if len(lines) != len(want) {
		t.Fatalf("the example printed:\n%s", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Fatalf("line %d is %q, want it to start with %q; the example printed:\n%s", i+1, lines[i], w, out)
		}
	}
	for _, l := range []string{lines[1], lines[3]} {
		if !strings.HasSuffix(l, "dpop=") {
			t.Fatalf("the upstream got a DPoP header: %q", l)
		}
	}
	if !strings.Contains(lines[2], `error="invalid_token", error_description="this resource takes DPoP-bound access tokens only"`) {
		t.Fatalf("the token as a bearer token: %q", lines[2])
	}
	if !strings.Contains(lines[4], `error="invalid_dpop_proof", error_description="DPoP proof was already used"`) {
		t.Fatalf("the proof sent again: %q", lines[4])
	}
}
