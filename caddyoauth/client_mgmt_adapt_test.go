package caddyoauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestAdaptClientManagementOptions: the Caddyfile options adapt to the JSON
// fields the app reads, and that JSON provisions.
func TestAdaptClientManagementOptions(t *testing.T) {
	input := `{
	oauth {
		store memory
		scopes read write
		self_service
		apps_allowed_grants authorization_code
	}
}
:0 {
	oauth_server
}`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			OAuth json.RawMessage `json:"oauth"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	want := `{"store":{"module":"memory"},"scopes":["read","write"],"self_service":true,"apps_allowed_grants":["authorization_code"]}`
	if string(cfg.Apps.OAuth) != want {
		t.Fatalf("adapted oauth app:\n got %s\nwant %s", cfg.Apps.OAuth, want)
	}
	cfgJSON := strings.Replace(string(out), `"apps":{`, `"admin":{"disabled":true},"apps":{`, 1)
	if err := caddy.Validate(mustConfig(t, []byte(cfgJSON))); err != nil {
		t.Fatalf("the adapted config does not provision: %v", err)
	}
}
