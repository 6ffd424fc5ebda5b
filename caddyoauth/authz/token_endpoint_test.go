package authz

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClientAuthentication(t *testing.T) {
	svc, _ := newTestService(t, nil)
	cc := form("grant_type", "client_credentials")
	withPost := func(id, secret string) []string {
		return []string{"grant_type", "client_credentials", "client_id", id, "client_secret", secret}
	}
	tests := []struct {
		name       string
		form       []string
		auths      []auth
		status     int
		code       string // "" for success
		basicChall bool   // want WWW-Authenticate: Basic
	}{
		{name: "basic", auths: []auth{basic("conf", confSecret)}, status: 200},
		{name: "post", form: withPost("conf", confSecret), status: 200},
		{name: "basic scheme in lower case", auths: []auth{header("Authorization", "basic "+b64("conf:"+confSecret))}, status: 200},
		{name: "basic with url-encoded id and secret", auths: []auth{basic(oddID, oddSecret)}, status: 200},
		{name: "post with odd characters", form: withPost(oddID, oddSecret), status: 200},
		{name: "bcrypt secret", auths: []auth{basic("hashed", "hashed-secret")}, status: 200},
		{name: "basic with matching client_id in form", form: []string{"grant_type", "client_credentials", "client_id", "conf"}, auths: []auth{basic("conf", confSecret)}, status: 200},
		{name: "empty client_secret next to basic counts as omitted", form: []string{"grant_type", "client_credentials", "client_secret", ""}, auths: []auth{basic("conf", confSecret)}, status: 200},

		{name: "basic and client_secret both", form: withPost("conf", confSecret), auths: []auth{basic("conf", confSecret)}, status: 400, code: "invalid_request"},
		{name: "basic and a different client_id", form: []string{"grant_type", "client_credentials", "client_id", "other"}, auths: []auth{basic("conf", confSecret)}, status: 400, code: "invalid_request"},
		{name: "wrong secret by basic", auths: []auth{basic("conf", "nope")}, status: 401, code: "invalid_client", basicChall: true},
		{name: "wrong secret by post", form: withPost("conf", "nope"), status: 401, code: "invalid_client"},
		{name: "empty secret by post", form: []string{"grant_type", "client_credentials", "client_id", "conf"}, status: 401, code: "invalid_client"},
		{name: "wrong bcrypt secret", auths: []auth{basic("hashed", "nope")}, status: 401, code: "invalid_client", basicChall: true},
		{name: "unknown client by basic", auths: []auth{basic("ghost", "x")}, status: 401, code: "invalid_client", basicChall: true},
		{name: "unknown client by post", form: withPost("ghost", "x"), status: 401, code: "invalid_client"},
		{name: "no client authentication", status: 401, code: "invalid_client"},
		{name: "url-encoded secret sent raw", auths: []auth{header("Authorization", "Basic "+b64(oddID+":"+oddSecret))}, status: 401, code: "invalid_client", basicChall: true},
		{name: "bad percent-encoding in basic", auths: []auth{header("Authorization", "Basic "+b64("conf:%zz"))}, status: 401, code: "invalid_client", basicChall: true},
		{name: "basic that is not base64", auths: []auth{header("Authorization", "Basic !!!")}, status: 401, code: "invalid_client", basicChall: true},
		{name: "basic with no colon", auths: []auth{header("Authorization", "Basic "+b64("conf"))}, status: 401, code: "invalid_client", basicChall: true},
		{name: "empty basic id", auths: []auth{basic("", confSecret)}, status: 401, code: "invalid_client", basicChall: true},
		{name: "bearer scheme", auths: []auth{header("Authorization", "Bearer abc")}, status: 401, code: "invalid_client", basicChall: true},
		{name: "two Authorization headers", auths: []auth{basic("conf", confSecret), header("Authorization", "Basic "+b64("conf:"+confSecret))}, status: 400, code: "invalid_request"},
		{name: "public client with a secret", form: []string{"grant_type", "refresh_token", "refresh_token", "x", "client_id", "pub", "client_secret", "x"}, status: 401, code: "invalid_client"},
		{name: "public client by basic", form: []string{"grant_type", "refresh_token", "refresh_token", "x"}, auths: []auth{basic("pub", "")}, status: 401, code: "invalid_client", basicChall: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := cc
			if tc.form != nil {
				f = form(tc.form...)
			}
			r := post(t, svc, f, tc.auths...)
			if tc.code == "" {
				r.wantToken(t)
				return
			}
			r.wantError(t, tc.status, tc.code)
			chall := r.header.Get("WWW-Authenticate")
			if tc.basicChall != strings.HasPrefix(chall, "Basic ") {
				t.Fatalf("WWW-Authenticate = %q, want a Basic challenge: %v", chall, tc.basicChall)
			}
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestTokenRequestErrors(t *testing.T) {
	svc, _ := newTestService(t, nil)
	ok := basic("conf", confSecret)
	t.Run("GET", func(t *testing.T) {
		r := serve(t, svc, httptest.NewRequest(http.MethodGet, "/oauth/token?grant_type=client_credentials", nil))
		r.wantError(t, http.StatusMethodNotAllowed, "invalid_request")
		if r.header.Get("Allow") != "POST" {
			t.Fatalf("Allow = %q", r.header.Get("Allow"))
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
		req.Header.Set("Content-Type", "application/json")
		ok(req)
		serve(t, svc, req).wantError(t, 400, "invalid_request")
	})
	t.Run("no content type", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(`grant_type=client_credentials`))
		ok(req)
		serve(t, svc, req).wantError(t, 400, "invalid_request")
	})
	t.Run("content type with charset", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(`grant_type=client_credentials`))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
		ok(req)
		serve(t, svc, req).wantToken(t)
	})
	t.Run("oversized body", func(t *testing.T) {
		postRaw(t, svc, "grant_type=client_credentials&pad="+strings.Repeat("a", MaxTokenRequestBody), ok).wantError(t, 400, "invalid_request")
	})
	t.Run("body just under the cap", func(t *testing.T) {
		// Two pads: one value may be at most MaxFormValueLength.
		body := "grant_type=client_credentials&pad=" + strings.Repeat("a", MaxFormValueLength) + "&pad2="
		postRaw(t, svc, body+strings.Repeat("a", MaxTokenRequestBody-len(body)), ok).wantToken(t)
	})
	t.Run("duplicated parameter", func(t *testing.T) {
		postRaw(t, svc, "grant_type=client_credentials&scope=read&scope=write", ok).wantError(t, 400, "invalid_request")
	})
	t.Run("duplicated grant_type", func(t *testing.T) {
		postRaw(t, svc, "grant_type=client_credentials&grant_type=password", ok).wantError(t, 400, "invalid_request")
	})
	t.Run("bad form encoding", func(t *testing.T) {
		postRaw(t, svc, "grant_type=client_credentials&x=%zz", ok).wantError(t, 400, "invalid_request")
	})
	t.Run("semicolon separator", func(t *testing.T) {
		postRaw(t, svc, "grant_type=client_credentials;scope=read", ok).wantError(t, 400, "invalid_request")
	})
	t.Run("secret in the URL", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token?client_secret="+confSecret, strings.NewReader("grant_type=client_credentials&client_id=conf"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r := serve(t, svc, req)
		r.wantError(t, 400, "invalid_request")
		if strings.Contains(r.body, confSecret) {
			t.Fatal("the error echoes the secret")
		}
	})
	t.Run("missing grant_type", func(t *testing.T) {
		post(t, svc, form("scope", "read"), ok).wantError(t, 400, "invalid_request")
	})
	t.Run("empty grant_type", func(t *testing.T) {
		postRaw(t, svc, "grant_type=", ok).wantError(t, 400, "invalid_request")
	})
	t.Run("unknown grant", func(t *testing.T) {
		post(t, svc, form("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ok).wantError(t, 400, "unsupported_grant_type")
	})
	t.Run("implicit is no grant", func(t *testing.T) {
		post(t, svc, form("grant_type", "implicit"), ok).wantError(t, 400, "unsupported_grant_type")
	})
	t.Run("unknown grant with control characters is not echoed raw", func(t *testing.T) {
		r := post(t, svc, form("grant_type", "x\"\n\\y"), ok)
		r.wantError(t, 400, "unsupported_grant_type")
		if strings.ContainsAny(r.str("error_description"), "\"\n\\") {
			t.Fatalf("description %q", r.str("error_description"))
		}
	})
	t.Run("grant the client may not use", func(t *testing.T) {
		post(t, svc, form("grant_type", "password", "username", "alice", "password", alicePass), basic("svc", "svc-secret")).wantError(t, 400, "unauthorized_client")
	})
	t.Run("client_credentials by a public client", func(t *testing.T) {
		post(t, svc, form("grant_type", "client_credentials", "client_id", "pub")).wantError(t, 400, "unauthorized_client")
	})
}

func TestClientCredentials(t *testing.T) {
	svc, _ := newTestService(t, nil)
	t.Run("no user without a configured one", func(t *testing.T) {
		r := post(t, svc, form("grant_type", "client_credentials"), basic("conf", confSecret)).wantToken(t)
		if r.str("scope") != "read" {
			t.Fatalf("scope = %q, want the default read", r.str("scope"))
		}
		if r.str("refresh_token") != "" {
			t.Fatal("client_credentials returned a refresh token (RFC 6749 §4.4.3)")
		}
		id, err := svc.Validate(t.Context(), r.str("access_token"))
		if err != nil {
			t.Fatal(err)
		}
		if id.UserID != "" || id.ClientID != "conf" || id.Scope != "read" {
			t.Fatalf("identity %+v", id)
		}
	})
	t.Run("the client's user", func(t *testing.T) {
		r := post(t, svc, form("grant_type", "client_credentials"), basic("svc", "svc-secret")).wantToken(t)
		id, err := svc.Validate(t.Context(), r.str("access_token"))
		if err != nil {
			t.Fatal(err)
		}
		if id.UserID != "svc-user" || id.ClientID != "svc" {
			t.Fatalf("identity %+v", id)
		}
	})
	t.Run("requested scopes", func(t *testing.T) {
		r := post(t, svc, form("grant_type", "client_credentials", "scope", "write read write"), basic("conf", confSecret)).wantToken(t)
		if r.str("scope") != "write read" {
			t.Fatalf("scope = %q", r.str("scope"))
		}
	})
	for _, scope := range []string{"admin", "read admin", "read  write", " read", "read\x7f", `re"ad`} {
		t.Run("invalid scope "+scope, func(t *testing.T) {
			post(t, svc, form("grant_type", "client_credentials", "scope", scope), basic("conf", confSecret)).wantError(t, 400, "invalid_scope")
		})
	}
}

func TestPasswordGrant(t *testing.T) {
	svc, _ := newTestService(t, nil)
	c := basic("conf", confSecret)
	t.Run("good password", func(t *testing.T) {
		r := post(t, svc, form("grant_type", "password", "username", "alice", "password", alicePass, "scope", "write"), c).wantToken(t)
		if r.str("refresh_token") == "" {
			t.Fatal("no refresh token for a client that may refresh")
		}
		id, err := svc.Validate(t.Context(), r.str("access_token"))
		if err != nil {
			t.Fatal(err)
		}
		if id.UserID != "user-1" || id.ClientID != "conf" || id.Scope != "write" {
			t.Fatalf("identity %+v", id)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		post(t, svc, form("grant_type", "password", "username", "alice", "password", "nope"), c).wantError(t, 400, "invalid_grant")
	})
	t.Run("unknown user", func(t *testing.T) {
		post(t, svc, form("grant_type", "password", "username", "mallory", "password", alicePass), c).wantError(t, 400, "invalid_grant")
	})
	t.Run("missing password", func(t *testing.T) {
		post(t, svc, form("grant_type", "password", "username", "alice"), c).wantError(t, 400, "invalid_request")
	})
	t.Run("wider scope", func(t *testing.T) {
		post(t, svc, form("grant_type", "password", "username", "alice", "password", alicePass, "scope", "admin"), c).wantError(t, 400, "invalid_scope")
	})
	t.Run("no users configured", func(t *testing.T) {
		bare := New(testConfig(), svc.Store(), testClients(), nil, nil)
		post(t, bare, form("grant_type", "password", "username", "alice", "password", alicePass), c).wantError(t, 400, "invalid_grant")
	})
}

func TestStoreDownAnswers503(t *testing.T) {
	svc := New(testConfig(), downStore{}, testClients(), testUsers(t), nil)
	tests := map[string][]string{
		"client_credentials": {"grant_type", "client_credentials"},
		"password":           {"grant_type", "password", "username", "alice", "password", alicePass},
		"refresh_token":      {"grant_type", "refresh_token", "refresh_token", "abc"},
		"authorization_code": {"grant_type", "authorization_code", "code", "abc", "redirect_uri", "https://a.example.com/cb"},
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			post(t, svc, form(f...), basic("conf", confSecret)).wantError(t, http.StatusServiceUnavailable, "temporarily_unavailable")
		})
	}
	t.Run("validate", func(t *testing.T) {
		_, err := svc.Validate(t.Context(), "abc")
		if err == nil || err == ErrTokenInvalid || err == ErrTokenExpired {
			t.Fatalf("Validate with the store down = %v, want a store error", err)
		}
	})
}
