package caddyoauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
)

// runningTestApp provisions an app on the memory store and makes it the
// one the admin API serves, with a dynamic client; it returns the
// client's id.
func runningTestApp(t *testing.T) string {
	t.Helper()
	a := new(App)
	if err := json.Unmarshal([]byte(`{"store":{"module":"memory"}}`), a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	setRunningApp(a)
	t.Cleanup(func() { clearRunningApp(a) })
	c := &clients.Client{Grants: []string{authz.GrantClientCredentials}}
	if _, err := a.registry.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// TestAdminBodylessPost: a POST without a body, such as a secret rotation
// or a user's revocation, needs no Content-Type; one with a body still
// needs application/json.
func TestAdminBodylessPost(t *testing.T) {
	id := runningTestApp(t)
	api := &adminAPI{logger: zap.NewNop()}
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		if err := api.serve(w, r); err != nil {
			t.Fatal(err)
		}
		return w
	}

	w := serve(httptest.NewRequest(http.MethodPost, "/oauth/clients/"+id+"/secret", nil))
	var info clients.Info
	if err := json.Unmarshal(w.Body.Bytes(), &info); w.Code != http.StatusOK || err != nil || info.ClientSecret == "" {
		t.Fatalf("bare POST .../secret: %d %s, want 200 with the new secret", w.Code, w.Body)
	}
	if w := serve(httptest.NewRequest(http.MethodPost, "/oauth/users/alice/revoke", nil)); w.Code != http.StatusOK {
		t.Fatalf("bare POST /oauth/users/alice/revoke: %d %s, want 200", w.Code, w.Body)
	}

	withBody := httptest.NewRequest(http.MethodPost, "/oauth/clients/"+id+"/secret", strings.NewReader("{}"))
	if w := serve(withBody); w.Code != http.StatusUnsupportedMediaType {
		t.Fatalf("POST with a body and no Content-Type: %d, want 415", w.Code)
	}
	patch := httptest.NewRequest(http.MethodPatch, "/oauth/clients/"+id, nil)
	if w := serve(patch); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "invalid_client_metadata") {
		t.Fatalf("bodyless PATCH: %d %s, want 400 invalid_client_metadata", w.Code, w.Body)
	}
}
