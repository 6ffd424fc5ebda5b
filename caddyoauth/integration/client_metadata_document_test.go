package integration

import (
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

const (
	agentCB      = "http://127.0.0.1:9/agent/cb"
	agentCBOther = "http://127.0.0.1:9/agent/cb2"
)

// agentHost serves client ID metadata documents over https on loopback,
// with a certificate the gateway trusts through SSL_CERT_FILE. It counts
// the connections it accepts and the fetches of each path.
type agentHost struct {
	*httptest.Server
	conns   atomic.Int32
	mu      sync.Mutex
	fetches map[string]int
}

func startAgentHost(t *testing.T) (*agentHost, string) {
	t.Helper()
	h := &agentHost{fetches: map[string]int{}}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.fetches[r.URL.Path]++
		h.mu.Unlock()
		if r.URL.Path != "/agent.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		fmt.Fprintf(w, `{"client_id":%q,"client_name":"Agent Smith","redirect_uris":[%q,%q],
			"grant_types":["authorization_code","refresh_token"],"response_types":["code"],
			"token_endpoint_auth_method":"none","scope":"read write"}`, h.URL+"/agent.json", agentCB, agentCBOther)
	}))
	h.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			h.conns.Add(1)
		}
	}
	h.StartTLS()
	t.Cleanup(h.Close)
	certFile := filepath.Join(t.TempDir(), "roots.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.Certificate().Raw})
	if err := os.WriteFile(certFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return h, certFile
}

func (h *agentHost) fetched(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fetches[path]
}

// setDynamicClients changes the running gateway's dynamic_clients through
// the admin API, which loads the changed config.
func setDynamicClients(t *testing.T, g *gt.Gateway, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.AdminURL+"/config/apps/oauth/dynamic_clients", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if r := gt.Do(t, req); r.Status != 200 {
		t.Fatalf("setting dynamic_clients: %d %s", r.Status, r.Body)
	}
	g.Settle()
}

func agentParams(clientID, redirectURI, challenge string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI}, "state": {"s1"},
		"scope": {"read"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
}

// TestClientMetadataDocument: an agent identified by the URL of its client
// ID metadata document, served over https with a certificate from a test
// CA, signs a person in through the real sign-in and consent pages (which
// name the document's host and say nobody vetted it), redeems the code,
// calls the protected API as that person and refreshes its token. Its
// consent holds for the redirect URI it was given for; a redirect URI the
// document does not list is refused without a redirect. Without
// allow_private_addresses the same client, on loopback, is refused and
// its host is not contacted.
func TestClientMetadataDocument(t *testing.T) {
	host, certFile := startAgentHost(t)
	clientID := host.URL + "/agent.json"
	hostPort := strings.TrimPrefix(host.URL, "https://")
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(fmt.Sprintf(`
oauth {
	store memory
	user alice %s u-alice
}`, gt.BcryptHash(t, "alice-pw")), fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr())), gt.WithEnv("SSL_CERT_FILE="+certFile))
	b := newBrowser(t, g.URL)

	// Off by default: the URL is an unknown client, and nothing is fetched.
	if md := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", ""); md.JSON["client_id_metadata_document_supported"] != nil {
		t.Fatalf("metadata advertises documents while they are off: %s", md.Body)
	}
	_, challenge := pkce("agent")
	if r := b.authorize(agentParams(clientID, agentCB, challenge)); r.Status != 400 || !strings.Contains(string(r.Body), "not registered") {
		t.Fatalf("documents off: %d %s", r.Status, r.Body)
	}
	if n := host.conns.Load(); n != 0 {
		t.Fatalf("documents off, yet the host was contacted %d times", n)
	}

	setDynamicClients(t, g, `{"metadata_documents":true,"allow_private_addresses":true,"scopes":["read"]}`)
	if md := gt.Get(t, g.URL+"/.well-known/oauth-authorization-server", ""); md.JSON["client_id_metadata_document_supported"] != true {
		t.Fatalf("metadata: %s", md.Body)
	}

	// Sign-in and consent.
	verifier, challenge := pkce("agent")
	r := b.authorize(agentParams(clientID, agentCB, challenge))
	login := b.follow(r)
	if !isPage(login, "Sign in") {
		t.Fatalf("sign-in page: %d %s", login.Status, login.Body)
	}
	consent := b.follow(b.login(login, "alice", "alice-pw"))
	body := string(consent.Body)
	for _, want := range []string{"Agent Smith", `<strong id="client-host">` + hostPort + `</strong>`, "not verified by the operator", "<li>read</li>"} {
		if !strings.Contains(body, want) {
			t.Fatalf("consent page lacks %q:\n%s", want, body)
		}
	}
	back := clientRedirect(t, b.decide(consent, "allow"))
	if back.Scheme+"://"+back.Host+back.Path != agentCB || back.Query().Get("code") == "" {
		t.Fatalf("redirected to %s", back)
	}

	// Code, token, protected call, refresh.
	tok := redeem(t, g, clientID, "", url.Values{"code": {back.Query().Get("code")}, "redirect_uri": {agentCB}, "code_verifier": {verifier}})
	if tok.Status != 200 || tok.Str("access_token") == "" || tok.Str("refresh_token") == "" || tok.Str("scope") != "read" {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}
	if api := gt.Get(t, g.URL+"/api", tok.Str("access_token")); api.Status != 200 {
		t.Fatalf("protected call: %d %s", api.Status, api.Body)
	}
	if u, c := up.Last().Values("X-User-Id"), up.Last().Values("X-Oauth-Client-Id"); len(u) != 1 || u[0] != "u-alice" || len(c) != 1 || c[0] != clientID {
		t.Fatalf("upstream saw X-User-ID %v, X-OAuth-Client-ID %v", u, c)
	}
	ref := gt.PostForm(t, g.URL+"/oauth/token", "", "", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {tok.Str("refresh_token")}, "client_id": {clientID}})
	if ref.Status != 200 || ref.Str("access_token") == "" {
		t.Fatalf("refresh: %d %s", ref.Status, ref.Body)
	}
	if api := gt.Get(t, g.URL+"/api", ref.Str("access_token")); api.Status != 200 {
		t.Fatalf("protected call with the refreshed token: %d", api.Status)
	}

	// The consent is remembered for this redirect URI, not for the other.
	_, challenge = pkce("again")
	if again := clientRedirect(t, b.follow(b.authorize(agentParams(clientID, agentCB, challenge)))); again.Query().Get("code") == "" {
		t.Fatalf("remembered consent: redirected to %s", again)
	}
	if other := b.follow(b.authorize(agentParams(clientID, agentCBOther, challenge))); !isPage(other, "wants to access your account") {
		t.Fatalf("another redirect URI of the document: %d %s, want the consent page", other.Status, other.Body)
	}

	// Requests the gateway cannot trust get a page, never a redirect.
	invalid := agentParams(clientID, agentCB, challenge)
	invalid.Set("response_type", "token")
	for name, params := range map[string]url.Values{
		"a redirect URI the document does not list": agentParams(clientID, "http://127.0.0.1:9/evil", challenge),
		"an invalid request":                        invalid,
		"a document that is not there":              agentParams(host.URL+"/missing.json", agentCB, challenge),
	} {
		if r := b.authorize(params); r.Status != 400 || r.Header.Get("Location") != "" {
			t.Fatalf("%s: %d Location=%q, want an error page", name, r.Status, r.Header.Get("Location"))
		}
	}
	missing := gt.PostForm(t, g.URL+"/oauth/token", "", "", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {ref.Str("refresh_token")}, "client_id": {host.URL + "/missing.json"}})
	if missing.Status != 401 || missing.Str("error") != "invalid_client" {
		t.Fatalf("token request of a missing document: %d %s, want invalid_client", missing.Status, missing.Body)
	}
	if n := host.fetched("/agent.json"); n != 1 {
		t.Fatalf("the document was fetched %d times within its max-age, want 1", n)
	}

	// Without allow_private_addresses the document on loopback is refused.
	setDynamicClients(t, g, `{"metadata_documents":true,"scopes":["read"]}`)
	conns := host.conns.Load()
	_, challenge = pkce("private")
	r = b.authorize(agentParams(clientID, agentCB, challenge))
	if r.Status != 400 || r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), "not a public one") {
		t.Fatalf("document on loopback: %d %s", r.Status, r.Body)
	}
	refused := gt.PostForm(t, g.URL+"/oauth/token", "", "", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {ref.Str("refresh_token")}, "client_id": {clientID}})
	if refused.Status != 401 || refused.Str("error") != "invalid_client" {
		t.Fatalf("token request: %d %s, want invalid_client", refused.Status, refused.Body)
	}
	if api := gt.Get(t, g.URL+"/api", ref.Str("access_token")); api.Status != 401 {
		t.Fatalf("protected call of a refused client: %d, want 401", api.Status)
	}
	if n := host.conns.Load(); n != conns {
		t.Fatalf("the host on loopback was contacted %d times", n-conns)
	}
}
