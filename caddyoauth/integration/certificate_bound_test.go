package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// clientCA is a certificate authority of the test's clients.
type clientCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newClientCA(t *testing.T) *clientCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &clientCA{cert: cert, key: key}
}

// issue makes a client certificate for name.
func (ca *clientCA) issue(t *testing.T, name string, serial int64) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func x5t(c tls.Certificate) string {
	d := sha256.Sum256(c.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(d[:])
}

// mtlsConfig is gt.TLSConfig with client certificates requested (and any
// accepted) on the site, which also answers as localhost: Caddy matches a
// connection to its site's TLS settings by the server name the client
// sends, which it sends for host names only, not for the loopback address
// the test gateway listens on. Clients use localhost (mtlsURL); the
// issuer is its origin.
func mtlsConfig(oauthBlock, siteBody string) string {
	c := strings.Replace(gt.TLSConfig(oauthBlock, siteBody), "\ttls internal\n",
		"\ttls internal {\n\t\tclient_auth {\n\t\t\tmode request\n\t\t}\n\t}\n", 1)
	c = strings.Replace(c, "https://{{.Addr}} {", "https://localhost:{{.Port}}, https://{{.Addr}} {", 1)
	return strings.Replace(c, "\toauth {\n", "\toauth {\n\t\tissuer https://localhost:{{.Port}}\n", 1)
}

// mtlsURL is the origin clients of an mtlsConfig gateway use.
func mtlsURL(g *gt.Gateway) string { return "https://localhost:" + strconv.Itoa(g.Params.Port) }

// protoClient is an HTTP client of one protocol version presenting cert
// (none when nil), on new connections.
type protoClient struct {
	name string
	do   func(req *http.Request) (*http.Response, error)
}

func clientsFor(t *testing.T, g *gt.Gateway, cert *tls.Certificate) []protoClient {
	t.Helper()
	conf := func(next ...string) *tls.Config {
		c := g.ClientTLS()
		if c == nil {
			t.Fatal("no CA of the gateway")
		}
		c.ServerName = "localhost"
		if cert != nil {
			c.Certificates = []tls.Certificate{*cert}
		}
		c.NextProtos = next
		return c
	}
	h1 := &http.Transport{TLSClientConfig: conf("http/1.1"), TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	h2 := &http.Transport{TLSClientConfig: conf(), ForceAttemptHTTP2: true}
	h3 := &http3.Transport{TLSClientConfig: conf()}
	t.Cleanup(func() { h1.CloseIdleConnections(); h2.CloseIdleConnections(); h3.Close() })
	return []protoClient{
		{"HTTP/1.1", func(r *http.Request) (*http.Response, error) { return h1.RoundTrip(r) }},
		{"HTTP/2", func(r *http.Request) (*http.Response, error) { return h2.RoundTrip(r) }},
		{"HTTP/3", func(r *http.Request) (*http.Response, error) { return h3.RoundTrip(r) }},
	}
}

// send makes req with c and reads the answer, checking its protocol.
func (c protoClient) send(t *testing.T, req *http.Request) *gt.Response {
	t.Helper()
	resp, err := c.do(req)
	if err != nil {
		t.Fatalf("%s %s %s: %v", c.name, req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	if want := map[string]int{"HTTP/1.1": 1, "HTTP/2": 2, "HTTP/3": 3}[c.name]; resp.ProtoMajor != want {
		t.Fatalf("%s: the answer came over %s", c.name, resp.Proto)
	}
	body, _ := io.ReadAll(resp.Body)
	out := &gt.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	_ = json.Unmarshal(body, &out.JSON)
	return out
}

func tokenRequest(t *testing.T, g *gt.Gateway, client string, form url.Values) *http.Request {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, mtlsURL(g)+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, client+"-secret")
	return req
}

// TestCertificateBoundTokens: over a TLS site that requests client
// certificates, a certificate_bound client's token is bound to the
// certificate of its token request (cnf.x5t#S256), and oauth_protect lets
// it through only on a connection presenting that certificate, over
// HTTP/1.1, HTTP/2 and HTTP/3 alike: never with another client's
// certificate, nor with none.
func TestCertificateBoundTokens(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, mtlsConfig(`
oauth {
	store memory
	client bound {
		secret bound-secret
		grants client_credentials
		scopes read
		user bound-user
		certificate_bound
	}
	client plain {
		secret plain-secret
		grants client_credentials
		scopes read
		user plain-user
	}
}`, "oauth_server\noauth_protect\nreverse_proxy "+up.Addr()), gt.WithHTTPS())
	ca := newClientCA(t)
	mine, theirs := ca.issue(t, "bound", 2), ca.issue(t, "someone else", 3)
	withMine, withTheirs, without := clientsFor(t, g, &mine), clientsFor(t, g, &theirs), clientsFor(t, g, nil)
	cc := url.Values{"grant_type": {"client_credentials"}}

	// Without a certificate, no token.
	if r := without[0].send(t, tokenRequest(t, g, "bound", cc)); r.Status != 400 || r.Str("error") != "invalid_request" {
		t.Fatalf("a token request without a certificate: %d %s", r.Status, r.Body)
	}
	for i, c := range withMine {
		r := c.send(t, tokenRequest(t, g, "bound", cc))
		if r.Status != 200 || r.Str("token_type") != "Bearer" {
			t.Fatalf("%s: token request with the certificate: %d %s", c.name, r.Status, r.Body)
		}
		token := r.Str("access_token")
		in := c.send(t, introspect(t, g, token))
		if cnf, _ := in.JSON["cnf"].(map[string]any); cnf["x5t#S256"] != x5t(mine) {
			t.Fatalf("%s: introspection %s, want cnf.x5t#S256 %s", c.name, in.Body, x5t(mine))
		}
		api := func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, mtlsURL(g)+"/api", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			return req
		}
		// Every protocol, whichever one issued the token.
		for j := range withMine {
			p := (i + j) % len(withMine)
			if r := withMine[p].send(t, api()); r.Status != 200 || up.Last().Get("X-User-Id") != "bound-user" {
				t.Fatalf("%s: the token over its certificate: %d %s", withMine[p].name, r.Status, r.Body)
			}
			for _, other := range [][]protoClient{withTheirs, without} {
				r := other[p].send(t, api())
				if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
					!strings.Contains(r.Header.Get("WWW-Authenticate"), "TLS client certificate") {
					t.Fatalf("%s: the token over another connection: %d %q", other[p].name, r.Status, r.Header.Get("WWW-Authenticate"))
				}
			}
		}
	}
	// A client that is not certificate-bound gets a bearer token, which
	// works with any certificate or none.
	r := withMine[0].send(t, tokenRequest(t, g, "plain", cc))
	req, _ := http.NewRequest(http.MethodGet, mtlsURL(g)+"/api", nil)
	req.Header.Set("Authorization", "Bearer "+r.Str("access_token"))
	if res := without[2].send(t, req); res.Status != 200 {
		t.Fatalf("a bearer token issued over a certificate: %d", res.Status)
	}
	md := withMine[1].send(t, mustGet(t, mtlsURL(g)+"/.well-known/oauth-authorization-server"))
	if md.JSON["tls_client_certificate_bound_access_tokens"] != true {
		t.Fatalf("metadata %s", md.Body)
	}
}

func introspect(t *testing.T, g *gt.Gateway, token string) *http.Request {
	t.Helper()
	return tokenRequestTo(t, g, "/oauth/introspect", "bound", url.Values{"token": {token}})
}

func tokenRequestTo(t *testing.T, g *gt.Gateway, path, client string, form url.Values) *http.Request {
	t.Helper()
	req := tokenRequest(t, g, client, form)
	req.URL.Path = path
	return req
}

func mustGet(t *testing.T, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
