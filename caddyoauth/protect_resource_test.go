package caddyoauth

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

// memDB opens an in-memory store, closed when the test ends.
func memDB(t *testing.T) *filestore.DB {
	t.Helper()
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// resourcesOf adapts and provisions a Caddyfile as Caddy does before
// starting it, and derives its resources; blocks maps each oauth_protect
// block's realm to its target.
func resourcesOf(t *testing.T, caddyfile string) (table *resourceTable, blocks map[string]*protectTarget, err error) {
	t.Helper()
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	js, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(js, &cfg); err != nil {
		t.Fatal(err)
	}
	ctx, err := caddy.ProvisionContext(&cfg)
	if err != nil {
		t.Fatalf("provisioning: %v", err)
	}
	mod, err := ctx.App("oauth")
	if err != nil {
		t.Fatal(err)
	}
	a := mod.(*App)
	table, err = a.resources()
	if err != nil {
		return nil, nil, err
	}
	blocks = map[string]*protectTarget{}
	for _, p := range a.protectBlocks() {
		blocks[p.Realm] = table.targets[p]
	}
	return table, blocks, nil
}

// metadataDocs returns the metadata documents every oauth_server of table
// serves, by path, decoded.
func metadataDocs(t *testing.T, table *resourceTable) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, docs := range table.docs {
		for path, b := range docs {
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			out[path] = doc
		}
	}
	return out
}

// TestProtectResourceDerivation: each oauth_protect block's resource is its
// resource option, else the issuer in a site serving oauth_server, else
// its site's one origin, else none; the site's oauth_server serves the
// metadata of its blocks' resources, which their challenges name, all
// from the config.
func TestProtectResourceDerivation(t *testing.T) {
	const global = "{\n\toauth {\n\t\tstore memory\n\t\tresources urn:example:reports\n\t}\n}\n\n"
	table, blocks, err := resourcesOf(t, global+`http://localhost:8080 {
	oauth_server
	handle /mcp/* {
		oauth_protect {
			realm mcp
			resource http://LOCALHOST:8080/mcp
			scope write
		}
	}
	handle /admin/* {
		oauth_protect {
			realm admin
			scope admin
		}
	}
	oauth_protect {
		realm api
		scope read
	}
}

http://api.example.com:9000 {
	oauth_protect {
		realm other
	}
}

http://:9001 {
	oauth_protect {
		realm nohost
	}
}
`)
	if err != nil {
		t.Fatal(err)
	}
	const md = `, resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource`
	want := map[string]protectTarget{
		"mcp":    {resource: "http://localhost:8080/mcp", challenge: `Bearer realm="mcp"` + md + `/mcp"`},
		"admin":  {resource: "http://localhost:8080", challenge: `Bearer realm="admin"` + md + `"`},
		"api":    {resource: "http://localhost:8080", challenge: `Bearer realm="api"` + md + `"`},
		"other":  {resource: "http://api.example.com:9000", challenge: `Bearer realm="other"`},
		"nohost": {resource: "", challenge: `Bearer realm="nohost"`},
	}
	for realm, w := range want {
		if got := blocks[realm]; got == nil || *got != w {
			t.Errorf("block %s: %+v, want %+v", realm, got, w)
		}
	}
	for _, r := range []string{"http://localhost:8080/mcp", "http://localhost:8080", "http://api.example.com:9000", "urn:example:reports"} {
		if !table.known[r] {
			t.Errorf("%s is not a known resource", r)
		}
	}
	if len(table.known) != 4 {
		t.Errorf("known resources %v", table.known)
	}
	algs := []any{"ES256", "ES384", "EdDSA", "RS256", "PS256"}
	wantDocs := map[string]map[string]any{
		"/.well-known/oauth-protected-resource": {"resource": "http://localhost:8080", "authorization_servers": []any{"http://localhost:8080"},
			"scopes_supported": []any{"admin", "read"}, "bearer_methods_supported": []any{"header"}, "dpop_signing_alg_values_supported": algs},
		"/.well-known/oauth-protected-resource/mcp": {"resource": "http://localhost:8080/mcp", "authorization_servers": []any{"http://localhost:8080"},
			"scopes_supported": []any{"write"}, "bearer_methods_supported": []any{"header"}, "dpop_signing_alg_values_supported": algs},
	}
	if got := metadataDocs(t, table); !reflect.DeepEqual(got, wantDocs) {
		t.Errorf("metadata documents %v, want %v", got, wantDocs)
	}
}

// TestProtectResourceBehindProxy: with issuer set, a block in the site of
// oauth_server is the issuer's resource, even on an address with no host.
func TestProtectResourceBehindProxy(t *testing.T) {
	table, blocks, err := resourcesOf(t, "{\n\toauth {\n\t\tstore memory\n\t\tissuer https://gw.example.com\n\t}\n}\n\nhttp://:8080 {\n\toauth_server\n\toauth_protect\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := protectTarget{resource: "https://gw.example.com",
		challenge: `Bearer realm="api", resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource"`}
	if got := blocks["api"]; got == nil || *got != want {
		t.Fatalf("block: %+v", got)
	}
	if doc := metadataDocs(t, table)["/.well-known/oauth-protected-resource"]; doc["resource"] != "https://gw.example.com" ||
		!reflect.DeepEqual(doc["authorization_servers"], []any{"https://gw.example.com"}) || doc["scopes_supported"] != nil {
		t.Fatalf("metadata %v", doc)
	}
}

// TestProtectResourceConfigRefused: audience required on a block whose
// resource is unknown, and two resources of one site sharing a metadata
// path, refuse the config when it starts, saying why.
func TestProtectResourceConfigRefused(t *testing.T) {
	const global = "{\n\toauth {\n\t\tstore memory\n\t\tissuer https://gw.example.com\n\t}\n}\n\n"
	for name, tc := range map[string]struct{ site, err string }{
		"audience required, no resource": {"http://:9000 {\n\toauth_protect {\n\t\taudience required\n\t}\n}\n",
			"audience required needs the block's resource"},
		"one metadata path": {"http://:8080 {\n\toauth_server\n\toauth_protect\n\thandle /x {\n\t\toauth_protect {\n\t\t\tresource https://other.example.com\n\t\t}\n\t}\n}\n",
			"have the same metadata path /.well-known/oauth-protected-resource"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := resourcesOf(t, global+tc.site); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// TestProtectAudience: a token requested for resource A is refused (401
// invalid_token) by a block guarding resource B, or guarding none; a token
// requested for no resource passes unless the block requires an audience.
func TestProtectAudience(t *testing.T) {
	const resA, resB = "https://a.example.com", "https://b.example.com/mcp"
	c := &authz.Client{ID: "svc", Grants: []string{authz.GrantClientCredentials}, Scopes: []string{"read"}}
	c.SetSecret("s")
	svc := authz.New(authz.Config{AccessTokenTTL: time.Hour, Resources: func() (map[string]bool, error) {
		return map[string]bool{resA: true, resB: true}, nil
	}}, memDB(t), authz.StaticClients{"svc": c}, nil, nil)
	token := func(resources ...string) string {
		scope := "read" // issue appends it to the form: the resources follow
		for _, r := range resources {
			scope += "&resource=" + url.QueryEscape(r)
		}
		return issue(t, svc, "svc", scope)
	}
	forA, forB, forBoth, forNone := token(resA), token(resB), token(resA, resB), token()
	block := func(resource string, required bool) *Protect {
		p := &Protect{svc: svc, logger: zap.NewNop(), resourceID: resource, AudienceRequired: required,
			UserHeader: DefaultUserHeader, ClientHeader: DefaultClientHeader, ScopeHeader: DefaultScopeHeader,
			challenge: `Bearer realm="api"`}
		p.prepareHeaders()
		return p
	}
	cases := []struct {
		name     string
		p        *Protect
		token    string
		pass     bool
		required bool
	}{
		{"A at A", block(resA, false), forA, true, false},
		{"A and B at B", block(resB, false), forBoth, true, false},
		{"none at A", block(resA, false), forNone, true, false},
		{"B at A", block(resA, false), forB, false, false},
		{"A at B", block(resB, false), forA, false, false},
		{"A at a block with no resource", block("", false), forA, false, false},
		{"none at a block with no resource", block("", false), forNone, true, false},
		{"A at A, audience required", block(resA, true), forA, true, true},
		{"none at A, audience required", block(resA, true), forNone, false, true},
	}
	for _, tc := range cases {
		w, next, err := run(tc.p, tc.token)
		if tc.pass {
			if err != nil || !next.called {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		ch := w.Header().Get("WWW-Authenticate")
		if statusOf(err) != 401 || next.called || !strings.HasPrefix(ch, `Bearer realm="api", error="invalid_token"`) {
			t.Errorf("%s: status %d, called %v, challenge %q", tc.name, statusOf(err), next.called, ch)
		}
	}
}
