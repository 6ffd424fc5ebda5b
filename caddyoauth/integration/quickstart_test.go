package integration

import (
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
