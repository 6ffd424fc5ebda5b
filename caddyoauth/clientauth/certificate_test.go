package clientauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// testCert makes a certificate for key with the given subject and SANs,
// self-signed.
func testCert(t *testing.T, key crypto.Signer, subject pkix.Name, extra []pkix.AttributeTypeAndValue, dns []string, uris []string, ips []net.IP, emails []string) *x509.Certificate {
	t.Helper()
	subject.ExtraNames = extra
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: subject, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), DNSNames: dns, IPAddresses: ips, EmailAddresses: emails,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, u := range uris {
		pu, _ := url.Parse(u)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestCertMatch: each tls_client_auth attribute against certificates that
// have it and that do not.
func TestCertMatch(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := testCert(t, key, pkix.Name{CommonName: "billing  client", Organization: []string{"Example, Inc."},
		OrganizationalUnit: []string{"Ops"}, Country: []string{"US"}},
		[]pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, Value: "example"}},
		[]string{"billing.client.example"}, []string{"spiffe://example.org/billing"},
		[]net.IP{net.ParseIP("192.0.2.7"), net.ParseIP("2001:db8::7")}, []string{"Ops@Client.Example"})
	// Go writes C, O, OU, CN, then the extra names: RFC 4514 lists them
	// from the last.
	match := []CertMatch{
		{SubjectDN: `DC=example,CN=billing client,OU=Ops,O=Example\, Inc.,C=US`},
		{SubjectDN: `dc=EXAMPLE, cn = Billing Client ,ou=ops,o=example\2C inc.,c=us`},
		{SubjectDN: `0.9.2342.19200300.100.1.25=example,2.5.4.3=billing client,OU=Ops,O=Example\, Inc.,C=US`},
		{DNS: "Billing.Client.Example"},
		{URI: "spiffe://example.org/billing"},
		{IP: "192.0.2.7"},
		{IP: "2001:db8:0::7"},
		{Email: "Ops@client.example"},
	}
	for _, m := range match {
		if !m.matches(cert) {
			t.Errorf("%+v does not match", m)
		}
	}
	differ := []CertMatch{
		{SubjectDN: `CN=billing client,OU=Ops,O=Example\, Inc.,C=US`},                        // one RDN short
		{SubjectDN: `C=US,O=Example\, Inc.,OU=Ops,CN=billing client,DC=example`},             // order reversed
		{SubjectDN: `DC=example,CN=billing client,OU=Ops,O=Example\, Inc.,C=US,L=Somewhere`}, // one RDN more
		{SubjectDN: `DC=example,CN=billing client+OU=Ops,O=Example\, Inc.,C=US`},             // RDNs merged
		{SubjectDN: `DC=example,CN=billing,OU=Ops,O=Example\, Inc.,C=US`},
		{DNS: "other.client.example"},
		{DNS: "client.example"},
		{URI: "spiffe://example.org/billing/other"},
		{IP: "192.0.2.8"},
		{Email: "ops@client.example"}, // the local part keeps its case
	}
	for _, m := range differ {
		if m.matches(cert) {
			t.Errorf("%+v matches", m)
		}
	}
}

// TestParseDN reads RFC 4514 strings, multi-valued RDNs and escapes.
func TestParseDN(t *testing.T) {
	got, err := parseDN(`CN=a\+b+UID=x\41, O=\"Q\"\\ ,C=US`)
	if err != nil {
		t.Fatal(err)
	}
	want := `[["0.9.2342.19200300.100.1.1=xa","2.5.4.3=a+b"],["2.5.4.10=\"q\"\\"],["2.5.4.6=us"]]`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Fatalf("parseDN = %s, want %s", b, want)
	}
	for _, bad := range []string{"", "CN", "CN=", "CN=a,", "CN=a\\", "CN=a\\q", "CN=#0403", "FOO=a", "1=a", "CN=\xff"} {
		if _, err := parseDN(bad); err == nil {
			t.Errorf("parseDN(%q) accepted", bad)
		}
	}
}

// TestVerifyCertificate: tls_client_auth needs a verified chain and the
// registered attribute; self_signed_tls_client_auth, the certificate's
// key in the client's set.
func TestVerifyCertificate(t *testing.T) {
	v, _ := newTestVerifier(t, Options{})
	ctx := context.Background()
	ck := newTestKey(t, "ES256", "tls")
	cert := testCert(t, ck.signer, pkix.Name{CommonName: "client"}, nil, []string{"client.example"}, nil, nil, nil)
	otherKey := newTestKey(t, "ES256", "other")
	other := testCert(t, otherKey.signer, pkix.Name{CommonName: "client"}, nil, []string{"client.example"}, nil, nil, nil)

	pki, err := NewMethod(TLSClientAuth, nil, "", CertMatch{SubjectDN: "CN=client"})
	if err != nil {
		t.Fatal(err)
	}
	self, err := NewMethod(SelfSignedTLSClientAuth, jwks(ck), "", CertMatch{})
	if err != nil {
		t.Fatal(err)
	}
	verified := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}, VerifiedChains: [][]*x509.Certificate{{cert}}}
	unverified := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	cases := []struct {
		name string
		m    *Method
		cs   *tls.ConnectionState
		want string // "" for accepted
	}{
		{"pki, verified, matching", pki, verified, ""},
		{"pki, not verified", pki, unverified, "not verified"},
		{"pki, no certificate", pki, &tls.ConnectionState{}, "none was presented"},
		{"pki, not TLS", pki, nil, "not come over TLS"},
		{"pki, other subject", mustMethod(t, TLSClientAuth, CertMatch{SubjectDN: "CN=someone else"}), verified, "not the one registered"},
		{"self-signed, key in the set", self, unverified, ""},
		{"self-signed, other key", self, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{other}}, "not one of the client's keys"},
		{"self-signed, no certificate", self, &tls.ConnectionState{}, "none was presented"},
		{"private_key_jwt", inlineClient(t, ck).Method, verified, "does not authenticate with a TLS"},
	}
	for _, tc := range cases {
		err := v.VerifyCertificate(ctx, Client{ID: testClient, Method: tc.m}, tc.cs)
		var e *Error
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.As(err, &e) || !strings.Contains(e.Description, tc.want)):
			t.Errorf("%s: got %v, want a refusal saying %q", tc.name, err, tc.want)
		}
	}
}

func mustMethod(t *testing.T, name string, m CertMatch) *Method {
	t.Helper()
	out, err := NewMethod(name, nil, "", m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
