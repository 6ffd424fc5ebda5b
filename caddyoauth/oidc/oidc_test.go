package oidc

import (
	"net/url"
	"testing"
	"time"
)

func TestParseRequest(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		query   string
		openID  bool
		code    string
		nilReq  bool
		checked func(*Request) bool
	}{
		{query: "", openID: false, nilReq: true},
		{query: "response_mode=form_post", openID: false, checked: func(r *Request) bool { return r.FormPost() && !r.OpenID }},
		{query: "response_mode=fragment", openID: true, code: "invalid_request", nilReq: true},
		{query: "nonce=abc&prompt=login+consent", openID: true, checked: func(r *Request) bool {
			return r.Nonce == "abc" && r.Has(PromptLogin) && r.ForceConsent() && !r.NoInteraction()
		}},
		{query: "prompt=none+login", openID: true, code: "invalid_request"},
		{query: "prompt=bogus", openID: true, code: "invalid_request"},
		{query: "max_age=-1", openID: true, code: "invalid_request"},
		{query: "max_age=x", openID: true, code: "invalid_request"},
		{query: "max_age=0", openID: true, checked: func(r *Request) bool { return r.MaxAge == 0 && r.WantsAuthTime() }},
		{query: "request=eyJ", openID: true, code: "request_not_supported"},
		{query: "request=eyJ", openID: false, nilReq: true},
		{query: "request_uri=https://x", openID: true, code: "request_uri_not_supported"},
		{query: "registration=%7B%7D", openID: true, code: "registration_not_supported"},
		{query: "claims=%5B%5D", openID: true, code: "invalid_request"},
		{query: "claims=%7B%22id_token%22%3A%7B%22name%22%3A%7B%22essential%22%3A1%7D%7D%7D", openID: true, code: "invalid_request"},
		{query: "claims=%7B%22id_token%22%3A%7B%22name%22%3Anull%7D%7D", openID: true, checked: func(r *Request) bool {
			_, ok := r.Claims.IDToken["name"]
			return ok
		}},
	} {
		q, _ := url.ParseQuery(tc.query)
		r, err := ParseRequest(q, tc.openID, -1, now)
		switch {
		case tc.code != "" && (err == nil || err.Code != tc.code):
			t.Errorf("%q: error %v, want %s", tc.query, err, tc.code)
		case tc.code == "" && err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.nilReq != (r == nil):
			t.Errorf("%q: request %v", tc.query, r)
		case tc.checked != nil && !tc.checked(r):
			t.Errorf("%q: %+v", tc.query, r)
		}
	}
}

// TestFresh: prompt=login needs a sign-in after the request; max_age one
// at most that old; a sign-in of unknown time answers neither.
func TestFresh(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	req := func(q string, def int64) *Request {
		v, _ := url.ParseQuery(q)
		r, err := ParseRequest(v, true, def, now)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	at := func(d time.Duration) int64 { return now.Add(d).UnixNano() }
	for _, tc := range []struct {
		r        *Request
		authTime int64
		want     bool
	}{
		{req("", -1), at(-time.Hour), true},
		{req("", -1), 0, true},
		{req("prompt=login", -1), at(-time.Second), false},
		{req("prompt=login", -1), at(time.Second), true},
		{req("max_age=60", -1), at(-30 * time.Second), true},
		{req("max_age=60", -1), at(-90 * time.Second), false},
		{req("max_age=60", -1), 0, false},
		{req("", 60), at(-90 * time.Second), false}, // the client's default_max_age
		{req("max_age=600", 60), at(-90 * time.Second), true},
		{nil, 0, true},
	} {
		if got := tc.r.Fresh(tc.authTime); got != tc.want {
			t.Errorf("%+v at %d: fresh %v, want %v", tc.r, tc.authTime, got, tc.want)
		}
	}
}

func TestClaimsCheck(t *testing.T) {
	good := Claims{"name": "A", "email_verified": true, "updated_at": int64(5), "address": map[string]any{"locality": "X"}}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Claims{
		{"nmae": "typo"},
		{"email_verified": "yes"},
		{"updated_at": "yesterday"},
		{"updated_at": 1.5},
		{"address": "1 Road"},
		{"address": map[string]any{"planet": "Earth"}},
		{"name": 7},
		{"sub": "x"},
	} {
		if bad.Check() == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestReleasedClaims(t *testing.T) {
	user := Claims{"name": "A", "email": "a@x", "phone_number": "1"}
	got := ForUserInfo(user, []string{"openid", "email"})
	if len(got) != 1 || got["email"] != "a@x" {
		t.Fatalf("userinfo %v", got)
	}
	req := &ClaimsRequest{IDToken: map[string]ClaimSpec{"name": {Essential: true}, "phone_number": {}}}
	got = ForIDToken(user, []string{"openid", "profile"}, req)
	if len(got) != 1 || got["name"] != "A" {
		t.Fatalf("id token %v", got)
	}
	if len(ForIDToken(user, []string{"openid", "profile"}, nil)) != 0 {
		t.Fatal("scope claims in the ID token without a claims request")
	}
}

func TestIDTokenJSON(t *testing.T) {
	tok := &IDToken{Issuer: "https://i", Subject: "u", ClientID: "c", IssuedAt: 1, Expiry: 2, Claims: Claims{"iss": "evil", "name": "N"}}
	m := tok.JSON()
	if m["iss"] != "https://i" || m["aud"] != "c" || m["azp"] != nil || m["name"] != "N" || m["nonce"] != nil {
		t.Fatalf("%v", m)
	}
	tok.Audiences = []string{"https://api"}
	m = tok.JSON()
	if aud, _ := m["aud"].([]string); len(aud) != 2 || m["azp"] != "c" {
		t.Fatalf("several audiences: %v", m)
	}
	// OIDC Core §3.1.3.6's example: at_hash of an access token.
	if got := AccessTokenHash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"); got != "77QmUPtjPfzWtF2AnpK9RQ" {
		t.Fatalf("at_hash %s", got)
	}
}

func TestClientCheck(t *testing.T) {
	good := Client{PostLogoutRedirectURIs: []string{"https://rp/bye", "com.example:/bye"}, IDTokenSignedResponseAlg: ES256,
		BackchannelLogoutURI: "https://rp/bc", DefaultMaxAge: 60, SubjectType: "public"}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Client{
		{PostLogoutRedirectURIs: []string{"/relative"}},
		{PostLogoutRedirectURIs: []string{"https://rp/bye#frag"}},
		{IDTokenSignedResponseAlg: "none"},
		{IDTokenSignedResponseAlg: "HS256"},
		{BackchannelLogoutURI: "ftp://rp/bc"},
		{DefaultMaxAge: -1},
		{SubjectType: "pairwise"},
	} {
		if bad.Check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
