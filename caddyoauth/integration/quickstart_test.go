package integration

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// quickstartTemplate turns the root Caddyfile into a harness template: the
// same config on free ports (CI may have :8080 or :9000 busy), with the
// harness's admin endpoint.
func quickstartTemplate(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(gt.RepoRoot(), "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for old, repl := range map[string]string{
		"localhost:8080": "{{.Addr}}",
		"localhost:9000": `127.0.0.1:{{index .Vars "upstream"}}`,
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("the root Caddyfile no longer mentions %s; update this test", old)
		}
		s = strings.ReplaceAll(s, old, repl)
	}
	global := regexp.MustCompile(`(?m)^\{\n`)
	if !global.MatchString(s) {
		t.Fatal("the root Caddyfile has no global options block")
	}
	return global.ReplaceAllLiteralString(s, "{\n\tadmin {{.Admin}}\n\tpersist_config off\n\tgrace_period 1ns\n")
}

// readmeCommands returns the shell block of the README's quickstart that
// runs against the gateway, with its URLs pointed at base.
func readmeCommands(t *testing.T, base string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(gt.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)In another terminal:\n\n```sh\n(.*?)```").FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatal("README: no sh block after \"In another terminal:\"")
	}
	return strings.ReplaceAll(m[1], "http://localhost:8080", base)
}

// TestQuickstartREADME starts the root Caddyfile (on free ports) and runs
// the README's curl commands as written, checking the answers the README
// promises.
func TestQuickstartREADME(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to run the README's commands")
	}
	upPort := gt.FreePort(t)
	g := gt.Start(t, quickstartTemplate(t), gt.WithVars(map[string]string{"upstream": itoa(upPort)}))
	script := readmeCommands(t, g.URL)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README commands failed: %v\n%s\n--- gateway:\n%s", err, out, g.Logs())
	}
	text := string(out)
	for _, want := range []string{
		`"token_type":"Bearer"`,                         // client_credentials token
		"user=user-42 client=demo-client scope=read",    // the call through the gateway, as the README's comment says
		`"user_id":"user-42","client_id":"demo-client"`, // /oauth/me
		"HTTP/1.1 401",
		`Www-Authenticate: Bearer realm="api"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("README commands' output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "user=admin") {
		t.Error("the forged X-User-ID reached the demo API")
	}
	// The README's comment shows the exact line the demo API answers.
	if !strings.Contains(readmeCommands(t, g.URL), "# user=user-42 client=demo-client scope=read") {
		t.Error("the README no longer shows the demo API's answer")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestQuickstartMCPExample: the root Caddyfile's commented MCP example,
// uncommented, starts and does what its comments say: the MCP site's 401
// names its protected resource metadata, which names the gateway as the
// authorization server, where an agent registers itself.
func TestQuickstartMCPExample(t *testing.T) {
	var lines []string
	inMCP := false
	for _, l := range strings.Split(quickstartTemplate(t), "\n") {
		switch {
		case strings.HasPrefix(l, "# http://localhost:8081"):
			inMCP = true
			l = l[2:]
		case inMCP && (strings.HasPrefix(l, "# \t") || l == "# }"):
			inMCP = l != "# }"
			l = l[2:]
		case strings.HasPrefix(l, "\t\t# dynamic_clients") || strings.HasPrefix(l, "\t\t# \t") || l == "\t\t# }" || strings.HasPrefix(l, "\t\t# issuer"):
			l = strings.Replace(l, "# ", "", 1)
		}
		lines = append(lines, l)
	}
	tmpl := strings.ReplaceAll(strings.Join(lines, "\n"), "localhost:8081", `127.0.0.1:{{index .Vars "mcp"}}`)
	if !strings.Contains(tmpl, "\t\tdynamic_clients {") || !strings.Contains(tmpl, "\n"+`http://127.0.0.1:{{index .Vars "mcp"}} {`) {
		t.Fatal("the root Caddyfile's commented MCP example is not where this test looks for it")
	}
	mcpPort := itoa(gt.FreePort(t))
	g := gt.Start(t, tmpl, gt.WithVars(map[string]string{"upstream": itoa(gt.FreePort(t)), "mcp": mcpPort}))
	mcpURL := "http://127.0.0.1:" + mcpPort + "/mcp"

	r := gt.Get(t, mcpURL, "")
	prm := "http://127.0.0.1:" + mcpPort + "/.well-known/oauth-protected-resource/mcp"
	if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `resource_metadata="`+prm+`"`) {
		t.Fatalf("the MCP site without a token: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	doc := gt.Get(t, prm, "")
	if doc.JSON["resource"] != mcpURL || fmt.Sprint(doc.JSON["authorization_servers"]) != "["+g.URL+"]" {
		t.Fatalf("protected resource metadata: %s", doc.Body)
	}
	as := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", "")
	reg, _ := as.JSON["registration_endpoint"].(string)
	if reg != g.URL+"/oauth/register" || as.JSON["client_id_metadata_document_supported"] != true {
		t.Fatalf("authorization server metadata: %s", as.Body)
	}
	req, _ := http.NewRequest(http.MethodPost, reg, strings.NewReader(`{"client_name":"My Agent","redirect_uris":["http://127.0.0.1/callback"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`))
	req.Header.Set("Content-Type", "application/json")
	if r := gt.Do(t, req); r.Status != 201 || r.Str("client_id") == "" {
		t.Fatalf("registration: %d %s", r.Status, r.Body)
	}
}
