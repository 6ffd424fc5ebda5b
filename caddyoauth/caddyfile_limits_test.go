package caddyoauth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestRateLimitCaddyfile(t *testing.T) {
	good := []struct {
		in   string
		want string // JSON of the rate_limit field
	}{
		{`oauth {
	rate_limit off
}`, `{"off":true}`},
		{`oauth {
	rate_limit {
		token 20/s burst 40
		login 5/m
		introspect off
	}
}`, `{"token":{"events":20,"per":1000000000,"burst":40},"login":{"events":5,"per":60000000000},"introspect":{"off":true}}`},
		{`oauth {
	rate_limit {
		token 100/10s
	}
}`, `{"token":{"events":100,"per":10000000000}}`},
		{`oauth {
	rate_limit {
		revoke 10/s burst 30
	}
}`, `{"revoke":{"events":10,"per":1000000000,"burst":30}}`},
	}
	for _, c := range good {
		a := new(App)
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in)); err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		got, _ := json.Marshal(a.RateLimit)
		if string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	bad := map[string]string{
		"rate_limit on":                                     "takes 'off' or a block",
		"rate_limit off extra":                              "wrong argument count",
		"rate_limit {\n\t\ttoken 20\n\t}":                   "is not <events>/<period>",
		"rate_limit {\n\t\ttoken 0/s\n\t}":                  "positive integer",
		"rate_limit {\n\t\ttoken 20/s burst\n\t}":           "takes <events>/<period>",
		"rate_limit {\n\t\ttoken 20/s bust 4\n\t}":          "expected 'burst'",
		"rate_limit {\n\t\ttoken 20/s burst -1\n\t}":        "not a positive integer",
		"rate_limit {\n\t\ttoken 20/s\n\t\ttoken 30/s\n\t}": "given twice",
		"rate_limit {\n\t\tsignup 20/s\n\t}":                "unrecognized rate_limit option",
		"rate_limit {\n\t\tlogin 5/fortnight\n\t}":          "the period must be",
		"rate_limit {\n\t}\n\trate_limit off":               "given twice",
	}
	for body, want := range bad {
		in := "oauth {\n\t" + body + "\n}"
		err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %v, want one containing %q and the file and line", body, err, want)
		}
	}
}

func TestLockoutCaddyfile(t *testing.T) {
	a := new(App)
	in := `oauth {
	lockout {
		window 10m
		slow_after 2
		lock_after 6
		lock_for 30m
		address_lock_after 50
	}
}`
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	want := LockoutConfig{Window: caddy.Duration(10 * time.Minute), SlowAfter: 2, LockAfter: 6,
		LockFor: caddy.Duration(30 * time.Minute), AddressLockAfter: 50}
	if a.Lockout == nil || *a.Lockout != want {
		t.Fatalf("lockout = %+v, want %+v", a.Lockout, want)
	}
	a = new(App)
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth {\n\tlockout off\n}")); err != nil || !a.Lockout.Off {
		t.Fatalf("lockout off: %+v, %v", a.Lockout, err)
	}
	bad := map[string]string{
		"lockout yes":                                      "takes 'off' or a block",
		"lockout {\n\t\twindow 0s\n\t}":                    "must be positive",
		"lockout {\n\t\twindow soon\n\t}":                  "bad duration",
		"lockout {\n\t\tslow_after 0\n\t}":                 "not a positive integer",
		"lockout {\n\t\tlock_after x\n\t}":                 "not a positive integer",
		"lockout {\n\t\tlock_after 2\n\t}":                 "must not exceed lock_after",
		"lockout {\n\t\tlock_for 1m\n\t\tlock_for 2m\n\t}": "given twice",
		"lockout {\n\t\tban_after 3\n\t}":                  "unrecognized lockout option",
		"lockout {\n\t\tslow_after 1 2\n\t}":               "wrong argument count",
	}
	for body, want := range bad {
		in := "oauth {\n\t" + body + "\n}"
		err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %v, want one containing %q and the file and line", body, err, want)
		}
	}
}

// TestLimitsProvision: the JSON form is checked in Provision too, and the
// defaults apply to what the config leaves out.
func TestLimitsProvision(t *testing.T) {
	provision := func(cfg string) (*App, error) {
		a := new(App)
		if err := json.Unmarshal([]byte(cfg), a); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
		t.Cleanup(cancel)
		return a, a.Provision(ctx)
	}
	a, err := provision(`{"store":{"module":"memory"},"rate_limit":{"login":{"events":5,"per":60000000000},"introspect":{"off":true}}}`)
	if err != nil {
		t.Fatal(err)
	}
	l := a.Limits()
	if r := l.rates[LimitToken]; r != defaultRates[LimitToken] {
		t.Errorf("token rate %+v, want the default", r)
	}
	if r := l.rates[LimitLogin]; r.Events != 5 || r.Per != time.Minute {
		t.Errorf("login rate %+v, want 5/m", r)
	}
	if _, on := l.rates[LimitIntrospect]; on {
		t.Error("introspect limit is on, want off")
	}
	if l.lockout == nil || l.lockout.Policy().LockAfter != 10 {
		t.Error("lockout is not on with its defaults")
	}
	for _, bad := range []string{
		`{"store":{"module":"memory"},"rate_limit":{"token":{"events":0,"per":1000000000}}}`,
		`{"store":{"module":"memory"},"rate_limit":{"token":{"events":5}}}`,
		`{"store":{"module":"memory"},"lockout":{"lock_after":-1}}`,
	} {
		if _, err := provision(bad); err == nil {
			t.Errorf("%s provisioned, want an error", bad)
		}
	}
	a, err = provision(`{"store":{"module":"memory"},"rate_limit":{"off":true},"lockout":{"off":true}}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Limits().rates) != 0 || a.Limits().lockout != nil {
		t.Error("rate_limit off / lockout off left something on")
	}
}
