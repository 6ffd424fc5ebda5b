package clients

import (
	"encoding/json"
	"testing"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// TestSenderConstrainedMetadata: a registration may ask for DPoP-bound
// (RFC 9449 §5.2) or certificate-bound (RFC 8705 §3.4) tokens; the client
// the authorization server sees requires them, and the answer says so.
func TestSenderConstrainedMetadata(t *testing.T) {
	m, err := ParseMetadata([]byte(`{"redirect_uris":["https://a.example.com/cb"],"token_endpoint_auth_method":"none",
		"dpop_bound_access_tokens":true,"tls_client_certificate_bound_access_tokens":true}`))
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{ID: "c1"}
	if err := m.Apply(c, Rules{Grants: authz.KnownGrants}, true); err != nil {
		t.Fatal(err)
	}
	ac, err := c.Authz()
	if err != nil || !ac.DPoPRequired || !ac.CertificateBound {
		t.Fatalf("authz client %+v, %v", ac, err)
	}
	b, _ := json.Marshal(InfoOf(c, ""))
	var info map[string]any
	_ = json.Unmarshal(b, &info)
	if info["dpop_bound_access_tokens"] != true || info["tls_client_certificate_bound_access_tokens"] != true {
		t.Fatalf("registration answer %s", b)
	}
	// A client stored by an earlier version requires neither.
	var old Client
	_ = json.Unmarshal([]byte(`{"client_id":"c0","grant_types":["authorization_code"],"public":true}`), &old)
	if ac, _ := old.Authz(); ac.DPoPRequired || ac.CertificateBound {
		t.Fatal("an earlier record requires sender-constrained tokens")
	}
}
