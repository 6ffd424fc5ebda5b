package caddyoauth

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseTokenOptions(t *testing.T) {
	good := `oauth {
		token_format jwt
		signing_key_rotation 48h
		audience https://api.example.com
		client rs {
			secret s3cret
			introspect
		}
	}`
	a := new(App)
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(good)); err != nil {
		t.Fatal(err)
	}
	if a.TokenFormat != "jwt" || a.Audience != "https://api.example.com" || a.SigningKeyRotation == nil ||
		time.Duration(*a.SigningKeyRotation) != 48*time.Hour || len(a.Clients) != 1 || !a.Clients[0].Introspect {
		t.Fatalf("parsed %+v", a)
	}

	for _, iss := range []string{"https://auth.example.com", "https://auth.example.com/", "http://localhost:8080"} {
		if err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth {\n\tissuer " + iss + "\n}")); err != nil {
			t.Errorf("issuer %s: %v", iss, err)
		}
	}

	a = new(App)
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth {\n\ttoken_format jwt\n\tsigning_key /etc/key.pem\n}")); err != nil || a.SigningKey != "/etc/key.pem" {
		t.Fatalf("signing_key: %v %+v", err, a)
	}

	bad := []struct{ in, msg string }{
		{"oauth {\n\ttoken_format paseto\n}", "token_format must be opaque or jwt"},
		{"oauth {\n\ttoken_format\n}", "wrong argument count"},
		{"oauth {\n\ttoken_format jwt jwt\n}", "wrong argument count"},
		{"oauth {\n\ttoken_format jwt\n\tsigning_key_rotation soon\n}", "bad duration"},
		{"oauth {\n\ttoken_format jwt\n\tsigning_key_rotation -1h\n}", "negative"},
		{"oauth {\n\ttoken_format jwt\n\taudience \"a b\"\n}", "may not contain spaces"},
		{"oauth {\n\tsigning_key /k.pem\n}", "signing_key needs token_format jwt, at Testfile:2"},
		{"oauth {\n\tclient a {\n\t\tsecret s\n\t\tgrants password\n\t}\n\taudience x\n\ttoken_format opaque\n}", "audience needs token_format jwt, at Testfile:6"},
		{"oauth {\n\taudience x\n}", "needs token_format jwt"},
		{"oauth {\n\ttoken_format jwt\n\tsigning_key /k.pem\n\tsigning_key_rotation 1h\n}", "by replacing it, at Testfile:4"},
		{"oauth {\n\tclient rs {\n\t\tsecret s\n\t\tintrospect yes\n\t}\n}", "wrong argument count"},
		{"oauth {\n\tclient rs {\n\t\tpublic\n\t\tintrospect\n\t}\n}", "public client cannot introspect"},
		{"oauth {\n\tclient rs {\n\t\tsecret s\n\t}\n}", "lists no grants"},
		{"oauth {\n\tissuer http://auth.example.com\n}", "must be an https URL"},
		{"oauth {\n\tissuer https://auth.example.com/?x=1\n}", "must be an https URL"},
		{"oauth {\n\tissuer auth.example.com\n}", "must be an https URL"},
		{"oauth {\n\tissuer https://example.com/tenant\n}", "must be an https URL"},
	}
	for _, c := range bad {
		err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in))
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: err = %v, want one mentioning %q and the line", c.in, err, c.msg)
		}
	}
}
