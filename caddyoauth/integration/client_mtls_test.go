package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// testCA issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

var certSerial = big.NewInt(100)

func ecdsaKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := ecdsaKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

// clientCert makes a client certificate for key with subject and DNS
// SANs, signed by ca, or self-signed when ca is nil.
func clientCert(t *testing.T, ca *testCA, key *ecdsa.PrivateKey, subject pkix.Name, dns ...string) tls.Certificate {
	t.Helper()
	certSerial.Add(certSerial, big.NewInt(1))
	tmpl := &x509.Certificate{SerialNumber: new(big.Int).Set(certSerial), Subject: subject, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// clientAuthTLSConfig is a Caddyfile with one TLS site asking for client
// certificates in mode, trusting the CA file {{.Vars.ca}} when verify.
// Caddy applies client_auth to the names of the site, which a client
// sends as SNI; no client sends an IP address there, so the site is also
// https://localhost:<port>, the name the tests use (mtlsClient), and
// 127.0.0.1:<port> for the start-up check.
func clientAuthTLSConfig(mode string, verify bool, oauthBlock string) string {
	pool := ""
	if verify {
		pool = "\n\t\t\ttrust_pool file {{.Vars.ca}}"
	}
	return `{
	admin {{.Admin}}
	auto_https disable_redirects
	local_certs
	skip_install_trust
	persist_config off
	grace_period 1ns
` + oauthBlock + `
}

https://localhost:{{.Port}}, https://{{.Addr}} {
	tls internal {
		client_auth {
			mode ` + mode + pool + `
		}
	}
	oauth_server
	respond "upstream"
}
`
}

// mtlsClient is a client of the gateway's https://localhost:<port> site
// presenting cert (none when nil) whatever the server asks for, over a
// connection of its own to 127.0.0.1.
func mtlsClient(g *gt.Gateway, cert *tls.Certificate) (*http.Client, string) {
	conf := g.ClientTLS()
	conf.ServerName = "localhost"
	if cert != nil {
		// Sent whatever CAs the server names, as a forger would.
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, g.Params.Addr)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf, DialContext: dial, DisableKeepAlives: true},
		Timeout: 10 * time.Second}, fmt.Sprintf("https://localhost:%d", g.Params.Port)
}

// postWithCert posts a form to the gateway presenting cert (none when
// nil). A TLS failure is returned as err.
func postWithCert(t *testing.T, g *gt.Gateway, path string, cert *tls.Certificate, form url.Values, basic ...string) (*gt.Response, error) {
	t.Helper()
	client, base := mtlsClient(g, cert)
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := &gt.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	_ = json.Unmarshal(body, &out.JSON)
	return out, nil
}

func mustPost(t *testing.T, g *gt.Gateway, path string, cert *tls.Certificate, form url.Values, basic ...string) *gt.Response {
	t.Helper()
	r, err := postWithCert(t, g, path, cert, form, basic...)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return r
}

func ccClient(id string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}}
}

// TestMutualTLSClientAuth: on a site that verifies client certificates
// against a trusted CA, a tls_client_auth client authenticates with a
// certificate of that CA whose subject, or DNS SAN, is the registered one,
// at the token, introspection and revocation endpoints. Another
// certificate of the same CA, no certificate, or a secret are refused
// with 401 invalid_client; a certificate of another CA fails the
// handshake. The metadata lists both certificate methods.
func TestMutualTLSClientAuth(t *testing.T) {
	ca, rogue := newTestCA(t, "partner-ca"), newTestCA(t, "rogue-ca")
	g := gt.Start(t, clientAuthTLSConfig("verify_if_given", true, `
	oauth {
		store memory
		issuer https://localhost:{{.Port}}
		client billing {
			grants client_credentials
			scopes read
			tls_client_auth subject "CN=billing,O=Example Corp"
		}
		client robot {
			grants client_credentials
			tls_client_auth san_dns robot.partner.example
		}
	}`), gt.WithHTTPS(), gt.WithVars(map[string]string{"ca": ca.file}))

	billing := clientCert(t, ca, ecdsaKey(t), pkix.Name{CommonName: "billing", Organization: []string{"Example Corp"}})
	robot := clientCert(t, ca, ecdsaKey(t), pkix.Name{CommonName: "robot-7"}, "robot.partner.example")
	other := clientCert(t, ca, ecdsaKey(t), pkix.Name{CommonName: "billing", Organization: []string{"Other Corp"}}, "other.partner.example")
	forged := clientCert(t, rogue, ecdsaKey(t), pkix.Name{CommonName: "billing", Organization: []string{"Example Corp"}}, "robot.partner.example")

	client, base := mtlsClient(g, nil)
	resp, err := client.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	mdBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(mdBody), `"tls_client_auth","self_signed_tls_client_auth"`) {
		t.Fatalf("metadata: %s", mdBody)
	}

	r := mustPost(t, g, "/oauth/token", &billing, ccClient("billing"))
	if r.Status != 200 || r.Str("access_token") == "" {
		t.Fatalf("billing with its certificate: %d %s", r.Status, r.Body)
	}
	access := r.Str("access_token")
	if r := mustPost(t, g, "/oauth/token", &robot, ccClient("robot")); r.Status != 200 {
		t.Fatalf("robot with its certificate: %d %s", r.Status, r.Body)
	}
	for what, r := range map[string]*gt.Response{
		"billing, another subject":    mustPost(t, g, "/oauth/token", &other, ccClient("billing")),
		"billing, robot's cert":       mustPost(t, g, "/oauth/token", &robot, ccClient("billing")),
		"robot, another SAN":          mustPost(t, g, "/oauth/token", &other, ccClient("robot")),
		"billing, no certificate":     mustPost(t, g, "/oauth/token", nil, ccClient("billing")),
		"billing, with a secret":      mustPost(t, g, "/oauth/token", &billing, url.Values{"grant_type": {"client_credentials"}}, "billing", "guess"),
		"introspection, another cert": mustPost(t, g, "/oauth/introspect", &other, url.Values{"client_id": {"billing"}, "token": {access}}),
		"revocation, no certificate":  mustPost(t, g, "/oauth/revoke", nil, url.Values{"client_id": {"billing"}, "token": {access}}),
	} {
		if r.Status != 401 || r.Str("error") != "invalid_client" {
			t.Errorf("%s: %d %s, want 401 invalid_client", what, r.Status, r.Body)
		}
	}
	// A certificate of an untrusted CA does not get through the handshake.
	if r, err := postWithCert(t, g, "/oauth/token", &forged, ccClient("billing")); err == nil {
		t.Fatalf("a certificate of another CA: %d %s", r.Status, r.Body)
	}

	if r := mustPost(t, g, "/oauth/introspect", &billing, url.Values{"client_id": {"billing"}, "token": {access}}); r.JSON["active"] != true {
		t.Fatalf("introspection: %d %s", r.Status, r.Body)
	}
	if r := mustPost(t, g, "/oauth/revoke", &billing, url.Values{"client_id": {"billing"}, "token": {access}}); r.Status != 200 {
		t.Fatalf("revocation: %d %s", r.Status, r.Body)
	}
	if r := mustPost(t, g, "/oauth/introspect", &billing, url.Values{"client_id": {"billing"}, "token": {access}}); r.JSON["active"] != false {
		t.Fatalf("introspection after revocation: %d %s", r.Status, r.Body)
	}
}

// TestSelfSignedMutualTLS: on a site that asks for certificates without
// verifying them, a self_signed_tls_client_auth client authenticates with
// a self-signed certificate whose key is in its JWK Set, and not with
// another; a tls_client_auth client is refused there even with a
// certificate of the right CA and subject, as nothing verified its chain.
func TestSelfSignedMutualTLS(t *testing.T) {
	ca := newTestCA(t, "partner-ca")
	deviceKey := ecdsaKey(t)
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "device",
		"x": base64.RawURLEncoding.EncodeToString(deviceKey.X.FillBytes(make([]byte, 32))),
		"y": base64.RawURLEncoding.EncodeToString(deviceKey.Y.FillBytes(make([]byte, 32)))}}})
	g := gt.Start(t, clientAuthTLSConfig("request", false, `
	oauth {
		store memory
		issuer https://localhost:{{.Port}}
		client device {
			grants client_credentials
			self_signed_tls_client_auth
			jwks `+"`"+string(jwks)+"`"+`
		}
		client billing {
			grants client_credentials
			tls_client_auth subject "CN=billing,O=Example Corp"
		}
	}`), gt.WithHTTPS())

	device := clientCert(t, nil, deviceKey, pkix.Name{CommonName: "device"})
	impostor := clientCert(t, nil, ecdsaKey(t), pkix.Name{CommonName: "device"})
	billing := clientCert(t, ca, ecdsaKey(t), pkix.Name{CommonName: "billing", Organization: []string{"Example Corp"}})

	if r := mustPost(t, g, "/oauth/token", &device, ccClient("device")); r.Status != 200 || r.Str("access_token") == "" {
		t.Fatalf("device with its key: %d %s", r.Status, r.Body)
	}
	for what, r := range map[string]*gt.Response{
		"device, a key not in its set":        mustPost(t, g, "/oauth/token", &impostor, ccClient("device")),
		"device, no certificate":              mustPost(t, g, "/oauth/token", nil, ccClient("device")),
		"billing, chain verified by nobody":   mustPost(t, g, "/oauth/token", &billing, ccClient("billing")),
		"device's certificate, for billing":   mustPost(t, g, "/oauth/token", &device, ccClient("billing")),
		"introspection, a key not in its set": mustPost(t, g, "/oauth/introspect", &impostor, url.Values{"client_id": {"device"}, "token": {"x"}}),
	} {
		if r.Status != 401 || r.Str("error") != "invalid_client" {
			t.Errorf("%s: %d %s, want 401 invalid_client", what, r.Status, r.Body)
		}
	}
}
