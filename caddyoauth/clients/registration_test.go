package clients

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
)

// clock is a registry's time, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func registered(t *testing.T, r *Registry) *Client {
	t.Helper()
	c := &Client{Name: "Agent", RegisteredBy: ByRegistration, Public: true, RegistrationTokenSHA256: Digest("rat"),
		Grants: []string{authz.GrantAuthorizationCode}, RedirectURIs: []string{"http://127.0.0.1/cb"}}
	if _, err := r.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRegisteredClientExpiresUnused: a client that registered itself
// lives lifetime after its registration or its last token, and a token
// issued now and then keeps it alive, at the cost of a write per
// sixteenth of the lifetime at most.
func TestRegisteredClientExpiresUnused(t *testing.T) {
	r := newRegistry(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	r.now = clk.now
	r.SetRegistrationPolicy(RegistrationPolicy{Grants: DefaultRegistrationGrants, Lifetime: 160 * time.Minute})
	ctx := context.Background()
	c := registered(t, r)
	operator := &Client{Name: "Op", RegisteredBy: ByOperator, Public: true, Grants: []string{authz.GrantAuthorizationCode}, RedirectURIs: []string{"https://x.example/cb"}}
	if _, err := r.Create(ctx, operator); err != nil {
		t.Fatal(err)
	}
	alive := func() bool {
		_, err := r.Client(ctx, c.ID)
		if err != nil && !errors.Is(err, authz.ErrUnknownClient) {
			t.Fatal(err)
		}
		return err == nil
	}

	clk.advance(5 * time.Minute)
	if err := r.ClientUsed(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Get(ctx, c.ID); got.UsedAt != c.UsedAt {
		t.Fatal("a use within a sixteenth of the lifetime rewrote the record")
	}
	clk.advance(150 * time.Minute)
	if err := r.ClientUsed(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := r.Get(ctx, c.ID)
	if got.UsedAt != clk.t.UnixNano() || got.UpdatedAt != c.UpdatedAt {
		t.Fatalf("a use after a sixteenth of the lifetime: used_at %d, updated_at %d", got.UsedAt, got.UpdatedAt)
	}
	clk.advance(159 * time.Minute)
	if !alive() {
		t.Fatal("expired before its lifetime since the last use")
	}
	clk.advance(time.Minute)
	if alive() {
		t.Fatal("alive a lifetime after its last use")
	}
	if _, err := r.Get(ctx, c.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an expired registration: %v", err)
	}
	if _, err := r.Update(ctx, c.ID, func(*Client) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update of an expired registration: %v", err)
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != operator.ID {
		t.Fatalf("List holds the expired registration: %v %v", list, err)
	}
	if _, err := r.Client(ctx, operator.ID); err != nil {
		t.Fatalf("an operator's client expired: %v", err)
	}
	// A lifetime of 0 keeps registrations.
	r.SetRegistrationPolicy(RegistrationPolicy{Grants: DefaultRegistrationGrants})
	if !alive() {
		t.Fatal("lifetime 0 still expires")
	}
}

// TestRegisteredClientGetsOnlyThePolicy: whatever its record says, a
// client that registered itself uses only the policy's grants and scopes,
// nobody vetted it, and its loopback redirect URIs match any port.
func TestRegisteredClientGetsOnlyThePolicy(t *testing.T) {
	r := newRegistry(t)
	r.SetRegistrationPolicy(RegistrationPolicy{Grants: DefaultRegistrationGrants, Scopes: []string{"read"}})
	ctx := context.Background()
	c := &Client{Name: "Agent", RegisteredBy: ByRegistration, Grants: []string{authz.GrantAuthorizationCode, authz.GrantClientCredentials},
		Scopes: []string{"read", "admin"}, RedirectURIs: []string{"http://127.0.0.1/cb"}}
	if _, err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	ac, err := r.Client(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ac.Grants, []string{authz.GrantAuthorizationCode}) || !slices.Equal(ac.Scopes, []string{"read"}) {
		t.Fatalf("grants %v scopes %v", ac.Grants, ac.Scopes)
	}
	if !ac.Unvetted || !ac.LoopbackAnyPort || ac.UserRegistered || !ac.HasRedirectURI("http://127.0.0.1:4711/cb") {
		t.Fatalf("unvetted %v, any port %v, user-registered %v", ac.Unvetted, ac.LoopbackAnyPort, ac.UserRegistered)
	}
}

func TestRegistrationPolicyCheck(t *testing.T) {
	for _, tc := range []struct {
		p     RegistrationPolicy
		token bool
		err   string
	}{
		{DefaultRegistrationPolicy(), false, ""},
		{RegistrationPolicy{Grants: []string{authz.GrantClientCredentials}}, true, ""},
		{RegistrationPolicy{Grants: []string{authz.GrantClientCredentials}}, false, "client_credentials needs registration token"},
		{RegistrationPolicy{Grants: []string{authz.GrantPassword}}, true, "password is never allowed"},
		{RegistrationPolicy{Grants: []string{"implicit"}}, true, "unknown grant"},
		{RegistrationPolicy{Scopes: []string{"a b"}}, false, "not a valid scope"},
		{RegistrationPolicy{Lifetime: -1}, false, "negative"},
	} {
		err := tc.p.Check(tc.token)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v token=%v: %v, want %q", tc.p, tc.token, err, tc.err)
		}
	}
}
