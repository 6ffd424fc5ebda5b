package clients

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

func newRegistry(t *testing.T) *Registry {
	t.Helper()
	db, err := filestore.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	static := authz.StaticClients{"fixed": {ID: "fixed", Grants: []string{authz.GrantClientCredentials}}}
	return New(db, static)
}

func TestCreateStoresOnlyTheDigest(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	c := &Client{Name: "A", UserID: "alice", Grants: []string{authz.GrantClientCredentials}}
	secret, err := r.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 43 || c.ID == "" || c.Consent != authz.ConsentRemember {
		t.Fatalf("secret %d chars, id %q, consent %q", len(secret), c.ID, c.Consent)
	}
	raw, err := r.store.Get(ctx, prefixClient+c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) == "" || contains(raw, secret) {
		t.Fatalf("record holds the plain secret: %s", raw)
	}
	ac, err := r.Client(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !ac.VerifySecret(secret) || ac.VerifySecret(secret+"x") || ac.VerifySecret("") {
		t.Fatal("the stored digest does not verify exactly the generated secret")
	}
}

func contains(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return true
		}
	}
	return false
}

func TestStaticClientsAreReadOnlyAndFirst(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	if _, err := r.Create(ctx, &Client{ID: "fixed", Grants: []string{authz.GrantClientCredentials}}); !errors.Is(err, ErrExists) {
		t.Fatalf("create over a static id: %v", err)
	}
	if _, err := r.Update(ctx, "fixed", func(*Client) error { return nil }); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("update static: %v", err)
	}
	if err := r.Delete(ctx, "fixed"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("delete static: %v", err)
	}
	if _, _, err := r.RotateSecret(ctx, "fixed"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("rotate static: %v", err)
	}
	if c, err := r.Client(ctx, "fixed"); err != nil || c.ID != "fixed" {
		t.Fatalf("static lookup: %v", err)
	}
	if _, err := r.Client(ctx, "nope"); !errors.Is(err, authz.ErrUnknownClient) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := r.Client(ctx, "bad:id"); !errors.Is(err, authz.ErrUnknownClient) {
		t.Fatalf("malformed id: %v", err)
	}
}

func TestOwnerSetsFollowUpdatesAndDeletes(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	c := &Client{UserID: "alice", Grants: []string{authz.GrantClientCredentials}}
	if _, err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if own, _ := r.Owned(ctx, "alice"); len(own) != 1 {
		t.Fatalf("alice owns %d", len(own))
	}
	if _, err := r.Update(ctx, c.ID, func(c *Client) error { c.UserID = "bob"; return nil }); err != nil {
		t.Fatal(err)
	}
	if own, _ := r.Owned(ctx, "alice"); len(own) != 0 {
		t.Fatalf("alice still owns %d after the change", len(own))
	}
	if own, _ := r.Owned(ctx, "bob"); len(own) != 1 {
		t.Fatalf("bob owns %d", len(own))
	}
	if err := r.Delete(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if own, _ := r.Owned(ctx, "bob"); len(own) != 0 {
		t.Fatal("bob still owns the deleted client")
	}
	if all, _ := r.List(ctx); len(all) != 0 {
		t.Fatal("list still has the deleted client")
	}
	if _, err := r.Create(ctx, &Client{ID: c.ID, Grants: []string{authz.GrantClientCredentials}}); !errors.Is(err, ErrExists) {
		t.Fatalf("a deleted id was reused: %v", err)
	}
}

func TestRotateReplacesTheSecret(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	c := &Client{Grants: []string{authz.GrantClientCredentials}}
	old, _ := r.Create(ctx, c)
	_, fresh, err := r.RotateSecret(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	ac, _ := r.Client(ctx, c.ID)
	if ac.VerifySecret(old) || !ac.VerifySecret(fresh) {
		t.Fatal("rotation did not replace the secret")
	}
	pub := &Client{Public: true, Grants: []string{authz.GrantAuthorizationCode}}
	if s, _ := r.Create(ctx, pub); s != "" {
		t.Fatal("a public client got a secret")
	}
	if _, _, err := r.RotateSecret(ctx, pub.ID); !IsPublicClientError(err) {
		t.Fatalf("rotate public: %v", err)
	}
}

// TestConcurrentUpdatesAreNotLost: Update is a compare-and-swap loop, so
// racing changes to different fields all land.
func TestConcurrentUpdatesAreNotLost(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	c := &Client{Grants: []string{authz.GrantClientCredentials}}
	if _, err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Update(ctx, c.ID, func(c *Client) error {
				c.RedirectURIs = append(c.RedirectURIs, string(rune('a'+i)))
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := r.Get(ctx, c.ID)
	if len(got.RedirectURIs) != 8 {
		t.Fatalf("%d of 8 concurrent updates landed", len(got.RedirectURIs))
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc": true, "c_x-Y.z~9": true, "": false, "a:b": false, "a/b": false, "a b": false,
		string(make([]byte, 129)): false,
	} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v", id, !want)
		}
	}
}
