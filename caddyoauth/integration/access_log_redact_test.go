package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
)

// accessEntry is one line of an access log.
type accessEntry struct {
	Logger  string         `json:"logger"`
	Msg     string         `json:"msg"`
	Status  int            `json:"status"`
	UserID  string         `json:"user_id"`
	Request map[string]any `json:"request"`
	fields  []string
}

func (e accessEntry) uri() string { s, _ := e.Request["uri"].(string); return s }

// readAccessLog parses the access log file at path.
func readAccessLog(t *testing.T, path string) []accessEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []accessEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e accessEntry
		var all map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &e) != nil || json.Unmarshal(sc.Bytes(), &all) != nil {
			t.Fatalf("access log line is not JSON: %s", sc.Text())
		}
		for k := range all {
			if k != "ts" {
				e.fields = append(e.fields, k)
			}
		}
		slices.Sort(e.fields)
		out = append(out, e)
	}
	return out
}

// TestAccessLogRedactsCredentials: credentials sent in a request's query,
// which the gateway refuses or ignores, never reach a site's access log
// (a plain `log` directive): the entry is written with their values
// replaced, keeping everything else of the entry, on the token endpoint,
// the other endpoints, an unknown /oauth/ path, and protected routes,
// whether the request is refused or passed on.
func TestAccessLogRedactsCredentials(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(`
oauth {
	store memory
	client svc {
		secret svc-secret
		grants client_credentials
		scopes read
		user svc-user
	}
}`, fmt.Sprintf(`
log {
	output file {{.DataDir}}/access.log
}
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())))
	logPath := filepath.Join(g.Params.DataDir, "access.log")
	tok := wantToken(t, clientCredentials(t, g, "svc", "svc-secret")).Str("access_token")
	if r := gt.Get(t, g.URL+"/api/plain?page=2", tok); r.Status != 200 {
		t.Fatalf("plain request: %d", r.Status)
	}

	secrets := []string{}
	secret := func(name string) string {
		s := "S3CRET-" + name + "-" + fmt.Sprint(len(secrets))
		secrets = append(secrets, s)
		return s
	}
	type call struct {
		method, target, token string
		status                int    // 0: whatever the endpoint answers
		keep                  string // a parameter that is no credential and stays
	}
	calls := []call{
		{"POST", "/oauth/token?grant_type=password&username=ann&password=" + secret("pw") + "&client_secret=" + secret("cs") +
			"&code=" + secret("code") + "&refresh_token=" + secret("rt") + "&code_verifier=" + secret("cv"), "", 400, "username=ann"},
		{"POST", "/oauth/introspect?token=" + secret("tok") + "&client_assertion=" + secret("ca"), "", 0, ""},
		{"POST", "/oauth/revoke?token=" + secret("tok"), "", 0, ""},
		{"GET", "/oauth/authorize?client_id=svc&id_token_hint=" + secret("idt") + "&state=xyz", "", 0, "state=xyz"},
		{"GET", "/oauth/nothing-here?code=" + secret("code"), "", 404, ""},
		{"GET", "/api/a?access_token=" + secret("at"), "", 401, ""},
		{"GET", "/api/b?Access_Token=" + secret("at") + "&keep=1", tok, 200, "keep=1"},
		{"GET", "/api/c?pass%77ord=" + secret("enc") + ";x=1", tok, 200, ""},
		{"GET", "/api/d?q=1&client_secret=" + secret("cs") + "&client_secret=" + secret("cs"), tok, 200, "q=1"},
	}
	for i, c := range calls {
		req, err := http.NewRequest(c.method, g.URL+c.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if c.method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		r := gt.Do(t, req)
		if c.status != 0 && r.Status != c.status {
			t.Fatalf("%s %s: %d, want %d", c.method, c.target, r.Status, c.status)
		}
		calls[i].status = r.Status
	}

	// One entry per request: the token request, the plain one, the calls.
	want := 2 + len(calls)
	poll.Until(t, 10*time.Second, fmt.Sprintf("%d access log entries", want), func() bool {
		return len(readAccessLog(t, logPath)) >= want
	})
	raw, _ := os.ReadFile(logPath)
	for _, s := range secrets {
		if strings.Contains(string(raw), s) || strings.Contains(g.Logs(), s) {
			t.Fatalf("a credential of the query reached the logs: %s", s)
		}
	}
	entries := readAccessLog(t, logPath)
	if len(entries) != want {
		t.Fatalf("%d access log entries, want %d:\n%s", len(entries), want, raw)
	}
	plain := entries[1]
	if plain.uri() != "/api/plain?page=2" || plain.UserID != "svc-user" {
		t.Fatalf("the plain request's entry: %+v", plain)
	}
	for i, c := range calls {
		e := entries[2+i]
		path, _, _ := strings.Cut(c.target, "?")
		if !strings.HasPrefix(e.uri(), path+"?") || !strings.Contains(e.uri(), "REDACTED") || (c.keep != "" && !strings.Contains(e.uri(), c.keep)) {
			t.Fatalf("entry of %s: uri %q", c.target, e.uri())
		}
		if e.Logger != plain.Logger || e.Msg != plain.Msg || e.Status != c.status || !slices.Equal(e.fields, plain.fields) {
			t.Fatalf("entry of %s is not like Caddy's own:\n%+v\nwant logger %s, msg %q, status %d, fields %v",
				c.target, e, plain.Logger, plain.Msg, c.status, plain.fields)
		}
		if e.Request["method"] != c.method || e.Request["headers"] == nil {
			t.Fatalf("entry of %s: request %v", c.target, e.Request)
		}
		if c.token != "" && e.UserID != "svc-user" {
			t.Fatalf("entry of %s: user_id %q, want svc-user", c.target, e.UserID)
		}
	}
}

// TestErrorLogRedactsCredentials: when a request whose query carries
// credentials ends in an error (here the upstream is down), Caddy's error
// log records the failure with the credentials' values replaced, with or
// without an access log, and the client still gets the error's status.
func TestErrorLogRedactsCredentials(t *testing.T) {
	for _, accessLog := range []bool{false, true} {
		t.Run(fmt.Sprintf("access log %v", accessLog), func(t *testing.T) {
			site := "oauth_server\noauth_protect\nreverse_proxy 127.0.0.1:1"
			if accessLog {
				site = "log {\n\toutput file {{.DataDir}}/access.log\n}\n" + site
			}
			g := gt.Start(t, gt.Config(`
oauth {
	store memory
	client svc {
		secret svc-secret
		grants client_credentials
		scopes read
		user svc-user
	}
}`, site))
			access := wantToken(t, clientCredentials(t, g, "svc", "svc-secret")).Str("access_token")
			r := gt.Get(t, g.URL+"/api?access_token=leaked-token-1&code=leaked-code-2&page=3", access)
			if r.Status != 502 {
				t.Fatalf("a protected call to a down upstream: %d, want 502", r.Status)
			}
			poll.Until(t, 10*time.Second, "the failure in the error log", func() bool {
				return strings.Contains(g.Logs(), `"logger":"http.log.error`) && strings.Contains(g.Logs(), "page=3")
			})
			for _, leaked := range []string{"leaked-token-1", "leaked-code-2", access} {
				if strings.Contains(g.Logs(), leaked) {
					t.Fatalf("a credential of the query reached the log:\n%s", g.Logs())
				}
			}
		})
	}
}
