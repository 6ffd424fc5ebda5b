package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// npmInstalls holds, by folder, the one `npm ci` of the test process.
var npmInstalls sync.Map // string → func() error

// nodeClient returns the folder of a Node package whose dependencies are
// installed (`npm ci`, once per test process, from its package-lock.json).
// Node and npm are needed: the test fails, never skips, without them.
func nodeClient(t *testing.T, dir string) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for the DPoP interop test: install nodejs and npm (apt-get install nodejs npm) or run scripts/test.sh, which does", tool)
		}
	}
	v, err := exec.Command("node", "-p", "process.versions.node.split('.')[0]").Output()
	if major, _ := strconv.Atoi(strings.TrimSpace(string(v))); err != nil || major < 20 {
		t.Fatalf("Node.js 20 or later is needed for the DPoP interop test (oauth4webapi); node says %q, %v", v, err)
	}
	install, _ := npmInstalls.LoadOrStore(dir, sync.OnceValue(func() error {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
		}
		return nil
	}))
	if err := install.(func() error)(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nodeResult is what testdata/dpop-client/client.mjs prints.
type nodeResult struct {
	MetadataAlgs []string `json:"metadata_algs"`
	TokenType    string   `json:"token_type"`
	AccessToken  string   `json:"access_token"`
	JKT          string   `json:"jkt"`
	API          apiCall  `json:"api"`
	Manual       apiCall  `json:"manual"`
	// Proofs made with the token, each wrong in one way: other_url,
	// other_method, replayed, stale, other_key.
	Proofs map[string]string `json:"proofs"`
	Code   *struct {
		TokenType     string  `json:"token_type"`
		API           apiCall `json:"api"`
		StolenRefresh string  `json:"stolen_refresh"`
		Refreshed     struct {
			TokenType string  `json:"token_type"`
			API       apiCall `json:"api"`
		} `json:"refreshed"`
	} `json:"code"`
}

type apiCall struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// runNodeClient runs the Node DPoP client with env and returns what it
// printed.
func runNodeClient(t *testing.T, env ...string) *nodeResult {
	t.Helper()
	dir := nodeClient(t, filepath.Join(gt.RepoRoot(), "caddyoauth", "integration", "testdata", "dpop-client"))
	cmd := exec.Command("node", "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the Node client failed: %v\n%s", err, stderr.String())
	}
	r := new(nodeResult)
	if err := json.Unmarshal(out, r); err != nil {
		t.Fatalf("the Node client printed %q: %v", out, err)
	}
	return r
}

const dpopInteropOAuth = `
oauth {
	store memory
	user alice %s u-alice
	client agent {
		secret agent-secret
		grants client_credentials
		scopes read
		user agent-service
		dpop required
	}
	client native {
		public
		redirect_uri http://127.0.0.1/callback
		grants authorization_code refresh_token
		scopes read
		consent skip
	}
	%s
}`

// TestDPoPInteropNode: a DPoP client built on panva's oauth4webapi and dpop
// (Node) gets DPoP-bound tokens from the gateway (client_credentials, and
// the authorization code of a public client, whose refresh token is bound
// too) and calls the API through it; the same token then fails with every
// kind of wrong proof, with the RFC 9449 error for each. With server nonces
// on, the library follows the gateway's use_dpop_nonce answers.
func TestDPoPInteropNode(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"without nonces", ""},
		{"with nonces", "dpop {\n\tnonce on\n}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := gt.StartUpstream(t)
			g := gt.Start(t, gt.Config(fmt.Sprintf(dpopInteropOAuth, gt.BcryptHash(t, "alice-pw"), tc.extra),
				"oauth_server\noauth_protect\nreverse_proxy "+up.Addr()))
			api := g.URL + "/api/orders"

			verifier, challenge := pkce("dpop")
			b := newBrowser(t, g.URL)
			back := b.approve(url.Values{"response_type": {"code"}, "client_id": {"native"}, "redirect_uri": {"http://127.0.0.1/callback"},
				"state": {"st-1"}, "scope": {"read"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}, "alice", "alice-pw")

			r := runNodeClient(t, "ISSUER="+g.URL, "API="+api, "CLIENT_ID=agent", "CLIENT_SECRET=agent-secret",
				"PUBLIC_CLIENT_ID=native", "CALLBACK="+back.String(), "STATE=st-1", "CODE_VERIFIER="+verifier,
				"REDIRECT_URI=http://127.0.0.1/callback")

			if strings.Join(r.MetadataAlgs, " ") != "ES256 ES384 EdDSA RS256 PS256" {
				t.Fatalf("dpop_signing_alg_values_supported %v", r.MetadataAlgs)
			}
			if !strings.EqualFold(r.TokenType, "DPoP") || r.JKT == "" {
				t.Fatalf("client_credentials: token_type %q, jkt %q", r.TokenType, r.JKT)
			}
			for name, call := range map[string]apiCall{"oauth4webapi's call": r.API, "the call with the replayed proof": r.Manual} {
				if call.Status != 200 || !strings.Contains(call.Body, `"X-User-Id":["agent-service"]`) {
					t.Fatalf("%s: %d %s", name, call.Status, call.Body)
				}
			}
			for _, h := range up.Requests() {
				if h.Get("Dpop") != "" || h.Get("Authorization") != "" {
					t.Fatalf("the upstream got the proof or the token: %v", h)
				}
			}
			// The gateway's own view of the token: introspection shows its key.
			// (agent may introspect its own tokens.)
			in := gt.PostForm(t, g.URL+"/oauth/introspect", "agent", "agent-secret", url.Values{"token": {r.AccessToken}})
			if cnf, _ := in.JSON["cnf"].(map[string]any); in.Str("token_type") != "DPoP" || cnf["jkt"] != r.JKT {
				t.Fatalf("introspection: %s", in.Body)
			}

			// The same token, wrongly presented.
			send := func(scheme, proof string) *gt.Response {
				req, _ := http.NewRequest(http.MethodGet, api, nil)
				req.Header.Set("Authorization", scheme+" "+r.AccessToken)
				if proof != "" {
					req.Header.Set("DPoP", proof)
				}
				return gt.Do(t, req)
			}
			for _, c := range []struct{ name, scheme, proof, want string }{
				{"without a proof", "DPoP", "", `error="invalid_dpop_proof", error_description="missing DPoP proof"`},
				{"with a proof for another URL", "DPoP", r.Proofs["other_url"], `error="invalid_dpop_proof", error_description="DPoP proof htu does not match`},
				{"with a proof for another method", "DPoP", r.Proofs["other_method"], `error="invalid_dpop_proof", error_description="DPoP proof htm does not match`},
				{"with a replayed jti", "DPoP", r.Proofs["replayed"], `error="invalid_dpop_proof", error_description="DPoP proof was already used"`},
				{"with a stale iat", "DPoP", r.Proofs["stale"], `error="invalid_dpop_proof", error_description="DPoP proof is too old"`},
				{"with another key", "DPoP", r.Proofs["other_key"], `error="invalid_token", error_description="DPoP key binding does not match`},
				{"as a bearer token", "Bearer", "", `error="invalid_token", error_description="the access token is DPoP-bound`},
			} {
				resp := send(c.scheme, c.proof)
				first := resp.Header.Get("WWW-Authenticate")
				if resp.Status != 401 || !strings.HasPrefix(first, c.scheme+` realm="api"`) || !strings.Contains(first, c.want) ||
					!strings.Contains(strings.Join(resp.Header.Values("WWW-Authenticate"), "\n"), `algs="ES256 ES384 EdDSA RS256 PS256"`) {
					t.Errorf("%s: %d %q, want 401 with %s", c.name, resp.Status, resp.Header.Values("WWW-Authenticate"), c.want)
				}
			}

			// The public client: code, DPoP-bound tokens, a refresh token
			// refused with another key and refreshed with its own.
			if r.Code == nil || !strings.EqualFold(r.Code.TokenType, "DPoP") || r.Code.API.Status != 200 ||
				!strings.Contains(r.Code.API.Body, `"X-User-Id":["u-alice"]`) {
				t.Fatalf("authorization code flow: %+v", r.Code)
			}
			if r.Code.StolenRefresh != "invalid_dpop_proof" {
				t.Fatalf("the refresh token with another key: %q, want invalid_dpop_proof", r.Code.StolenRefresh)
			}
			if !strings.EqualFold(r.Code.Refreshed.TokenType, "DPoP") || r.Code.Refreshed.API.Status != 200 {
				t.Fatalf("the refreshed token: %+v", r.Code.Refreshed)
			}
		})
	}
}
