// Package clients keeps the OAuth clients registered at run time (through
// the admin API, the `caddy oauth` commands or the self-service pages) in
// the gateway's store.Store, beside the tokens, so every instance sharing
// the store sees the same clients. It also holds the rules every client
// obeys (Settings.Check, for the config's clients too) and those of a
// registration in RFC 7591 terms (Metadata.Apply). It has no Caddy in it.
//
// Records: `client:<client_id>` holds a Client as JSON; the set `clients`
// lists every dynamic client_id and `owner:<user_id>` those a user owns.
// A deleted client_id leaves a `clientgone:<client_id>` tombstone so it is
// never issued again, and old tokens carrying it can never come back to
// life under a new owner. `roster:clients` holds the config's clients
// (roster.go); one removed from the config is retired with a tombstone too.
package clients

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/oidc"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// Store keys.
const (
	prefixClient    = "client:"
	prefixGone      = "clientgone:"
	prefixOwner     = "owner:"
	setAll          = "clients"
	maxSwapAttempts = 16
)

// Errors of the registry.
var (
	// ErrNotFound: no dynamic client has this id.
	ErrNotFound = errors.New("client not found")
	// ErrExists: the client_id is taken, by a static or a dynamic client,
	// or was used by a client since deleted.
	ErrExists = errors.New("client_id is already taken")
	// ErrReadOnly: the client is defined in the config and cannot be
	// changed at run time.
	ErrReadOnly = errors.New("client is defined in the config and is read-only")
	// ErrBusy: the record kept changing under concurrent updates.
	ErrBusy = errors.New("client is being changed concurrently; try again")
)

// Client is a dynamic client as stored. The secret is kept only as its
// SHA-256 digest: generated secrets have 256 random bits, so a fast hash
// is safe and keeps the token endpoint fast.
type Client struct {
	ID           string   `json:"client_id"`
	Name         string   `json:"client_name,omitempty"`
	UserID       string   `json:"user_id,omitempty"` // owner; empty for an operator's partner client
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	Grants       []string `json:"grant_types"`
	Scopes       []string `json:"scopes,omitempty"`
	Public       bool     `json:"public,omitempty"`
	Consent      string   `json:"consent,omitempty"`       // authz.ConsentRemember, ConsentAlways or ConsentSkip
	SecretSHA256 string   `json:"secret_sha256,omitempty"` // base64url digest
	CreatedAt    int64    `json:"created_at"`              // unix seconds
	UpdatedAt    int64    `json:"updated_at"`              // unix seconds
	// RegisteredBy is who registered the client, and so chose its redirect
	// URIs: ByOperator, ByUser or ByRegistration. Records of earlier
	// versions have none; see UserRegistered.
	RegisteredBy string `json:"registered_by,omitempty"`
	// AuthMethod is the token_endpoint_auth_method a confidential client
	// registered: AuthMethodBasic (also when empty) or AuthMethodPost,
	// which the token endpoint takes either of, and which is kept to be
	// answered back; or a method without a shared secret (KeyBased), the
	// only one the client may use, with its KeyAuth.
	AuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	KeyAuth
	// RegistrationTokenSHA256 is the digest of the registration access
	// token of a client that registered itself (RFC 7592), base64url.
	RegistrationTokenSHA256 string `json:"registration_token_sha256,omitempty"`
	// UsedAt is when a client that registered itself registered or was
	// last issued a token, in unix nanoseconds; see RegistrationPolicy.
	UsedAt int64 `json:"used_at,omitempty"`
	// OpenID is the client's OpenID Connect metadata.
	OpenID oidc.Client `json:"oidc,omitzero"`
	// Sender-constrained tokens: every token DPoP-bound (RFC 9449 §5.2),
	// or bound to the client's TLS certificate (RFC 8705 §3.4).
	DPoPBound        bool `json:"dpop_bound_access_tokens,omitempty"`
	CertificateBound bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
}

// Who registered a client (Client.RegisteredBy).
const (
	// ByOperator: the admin API or the `caddy oauth` commands.
	ByOperator = "operator"
	// ByUser: a user, on the self-service pages.
	ByUser = "user"
	// ByRegistration: the client itself, at the registration endpoint
	// (RFC 7591); nobody vetted it.
	ByRegistration = "registration"
)

// UserRegistered reports whether a user, not the operator, registered the
// client. A record of an earlier version, which does not say, counts as a
// user's when it has an owner: self-service apps always do.
func (c *Client) UserRegistered() bool {
	switch c.RegisteredBy {
	case ByUser:
		return true
	case ByOperator:
		return false
	}
	return c.UserID != ""
}

// Authz returns the client as the authorization server sees it.
func (c *Client) Authz() (*authz.Client, error) {
	ac := &authz.Client{
		ID: c.ID, Name: c.Name, Public: c.Public,
		RedirectURIs: c.RedirectURIs, Grants: c.Grants, Scopes: c.Scopes,
		UserID: c.UserID, Consent: c.Consent, UserRegistered: c.UserRegistered(),
		Unvetted: c.RegisteredBy == ByRegistration, LoopbackAnyPort: c.RegisteredBy == ByRegistration,
		OpenID: c.OpenID,
	}
	if ac.Name == "" {
		ac.Name = c.ID
	}
	ac.DPoPRequired, ac.CertificateBound = c.DPoPBound, c.CertificateBound
	if c.CreatedAt > 0 {
		ac.Since = time.Unix(c.CreatedAt, 0)
	}
	if c.KeyBased() {
		m, err := c.KeyAuth.Method(c.AuthMethod)
		if err != nil {
			return nil, fmt.Errorf("client %q: stored %s registration is malformed: %v", c.ID, c.AuthMethod, err)
		}
		ac.Auth = m
	} else if !c.Public {
		d, err := base64.RawURLEncoding.DecodeString(c.SecretSHA256)
		if err != nil || len(d) != sha256.Size {
			return nil, fmt.Errorf("client %q: stored secret digest is malformed", c.ID)
		}
		ac.SetSecretDigest([sha256.Size]byte(d))
	}
	return ac, nil
}

// Registry is the authorization server's ClientSource: static clients from
// the config first, then the dynamic ones in the store. It caches nothing
// itself; store.Lookup (invalidated across instances) does, so a deleted
// client or a rotated secret takes effect everywhere at once.
type Registry struct {
	store  store.Store
	static authz.StaticClients
	now    func() time.Time
	// userScopes, when limitUser is set, are the only scopes a client a
	// user registered may use, whatever its record says.
	userScopes []string
	limitUser  bool
	// documents resolves client_ids that are https URLs, when set.
	documents func(ctx context.Context, id string) (*authz.Client, error)
	// reg holds what clients that registered themselves may use.
	reg RegistrationPolicy
}

// UseDocuments makes the registry resolve a client_id that is an https
// URL, and no static client's, with resolve: a client ID metadata
// document. Call it before the registry serves.
func (r *Registry) UseDocuments(resolve func(ctx context.Context, id string) (*authz.Client, error)) {
	r.documents = resolve
}

// New returns a registry over s with the config's static clients.
func New(s store.Store, static authz.StaticClients) *Registry {
	return &Registry{store: s, static: static, now: time.Now, reg: DefaultRegistrationPolicy()}
}

// LimitUserScopes makes the clients that users registered usable with
// these scopes only (none when empty), whatever their records hold: a
// record written before the rule, or by an earlier version, gets no
// scope the operator does not allow users' clients now. Call it before
// the registry serves.
func (r *Registry) LimitUserScopes(scopes []string) {
	r.userScopes, r.limitUser = slices.Clone(scopes), true
}

// StaticNames returns the names and client_ids of the static clients, the
// names a user's client may not take (see NameKey).
func (r *Registry) StaticNames() []string {
	out := make([]string, 0, 2*len(r.static))
	for id, c := range r.static {
		out = append(out, id)
		if c.Name != "" && c.Name != id {
			out = append(out, c.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Static returns the static client with this id, if there is one.
func (r *Registry) Static(id string) (*authz.Client, bool) {
	c, ok := r.static[id]
	return c, ok
}

// StaticIDs lists the static clients' ids, sorted.
func (r *Registry) StaticIDs() []string {
	ids := make([]string, 0, len(r.static))
	for id := range r.static {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Client implements authz.ClientSource.
func (r *Registry) Client(ctx context.Context, id string) (*authz.Client, error) {
	if c, ok := r.static[id]; ok {
		return c, nil
	}
	if r.documents != nil && strings.HasPrefix(id, "https://") {
		return r.documents(ctx, id)
	}
	if !ValidID(id) {
		return nil, authz.ErrUnknownClient
	}
	b, err := r.store.Lookup(ctx, prefixClient+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, authz.ErrUnknownClient
	} else if err != nil {
		return nil, err
	}
	c, err := decode(b)
	if err != nil {
		return nil, err
	}
	if r.expired(c) {
		return nil, authz.ErrUnknownClient
	}
	ac, err := c.Authz()
	if err == nil && r.limitUser && ac.UserRegistered {
		ac.Scopes = slices.DeleteFunc(slices.Clone(ac.Scopes), func(s string) bool { return !slices.Contains(r.userScopes, s) })
	}
	if err == nil && c.RegisteredBy == ByRegistration {
		r.limitRegistered(ac)
	}
	return ac, err
}

// ClientsActingAs implements authz.ActingClientLister: the static clients
// whose user is userID and the dynamic clients it owns.
func (r *Registry) ClientsActingAs(ctx context.Context, userID string) ([]*authz.Client, error) {
	out, _ := r.static.ClientsActingAs(ctx, userID)
	owned, err := r.Owned(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, c := range owned {
		// One whose stored secret is unreadable authenticates nobody, and
		// must not block a revocation.
		if ac, err := c.Authz(); err == nil {
			out = append(out, ac)
		}
	}
	return out, nil
}

// Get returns a dynamic client, read authoritatively.
func (r *Registry) Get(ctx context.Context, id string) (*Client, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	_, c, err := r.get(ctx, id)
	if err == nil && r.expired(c) {
		return nil, ErrNotFound
	}
	return c, err
}

func (r *Registry) get(ctx context.Context, id string) ([]byte, *Client, error) {
	b, err := r.store.Get(ctx, prefixClient+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrNotFound
	} else if err != nil {
		return nil, nil, err
	}
	c, err := decode(b)
	return b, c, err
}

// Create registers c. An empty c.ID gets a generated one; a given one must
// be free (ErrExists otherwise). A confidential client gets a generated
// secret, returned here and never again. c must already be validated.
func (r *Registry) Create(ctx context.Context, c *Client) (secret string, err error) {
	if c.ID == "" {
		c.ID = NewID()
	} else if !ValidID(c.ID) {
		return "", fmt.Errorf("client_id %q may only contain letters, digits and -._~ (at most 128)", c.ID)
	}
	if _, static := r.static[c.ID]; static {
		return "", ErrExists
	}
	if _, err := r.store.Get(ctx, prefixGone+c.ID); err == nil {
		return "", ErrExists
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if c.Consent == "" {
		c.Consent = authz.ConsentRemember
	}
	if !c.Public && !c.KeyBased() {
		secret = NewSecret()
		c.SecretSHA256 = Digest(secret)
	}
	now := r.now()
	c.CreatedAt = now.Unix()
	c.UpdatedAt = c.CreatedAt
	if c.RegisteredBy == ByRegistration {
		c.UsedAt = now.UnixNano()
	}
	if err := r.store.Create(ctx, prefixClient+c.ID, encode(c), r.recordTTL(c)); errors.Is(err, store.ErrConflict) {
		return "", ErrExists
	} else if err != nil {
		return "", err
	}
	if err := r.store.AddMember(ctx, setAll, c.ID, 0); err != nil {
		return "", err
	}
	if c.UserID != "" {
		if err := r.store.AddMember(ctx, prefixOwner+c.UserID, c.ID, 0); err != nil {
			return "", err
		}
	}
	return secret, nil
}

// Update changes a dynamic client with change, atomically against other
// updates on any instance. change must leave the id alone and validate
// what it sets.
func (r *Registry) Update(ctx context.Context, id string, change func(*Client) error) (*Client, error) {
	return r.update(ctx, id, change, true)
}

// update is Update; a change that is no edit (a use noted) leaves
// UpdatedAt alone.
func (r *Registry) update(ctx context.Context, id string, change func(*Client) error, edit bool) (*Client, error) {
	if _, static := r.static[id]; static {
		return nil, ErrReadOnly
	}
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	for range maxSwapAttempts {
		prev, c, err := r.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if r.expired(c) {
			return nil, ErrNotFound
		}
		oldOwner := c.UserID
		if err := change(c); err != nil {
			return nil, err
		}
		c.ID = id
		if edit {
			c.UpdatedAt = r.now().Unix()
		}
		ttl := r.recordTTL(c)
		if ttl < 0 {
			return nil, ErrNotFound
		}
		err = r.store.Swap(ctx, prefixClient+id, prev, encode(c), ttl)
		if errors.Is(err, store.ErrConflict) {
			continue
		} else if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNotFound
		} else if err != nil {
			return nil, err
		}
		if c.UserID != oldOwner {
			if oldOwner != "" {
				if err := r.store.RemoveMember(ctx, prefixOwner+oldOwner, id); err != nil {
					return nil, err
				}
			}
			if c.UserID != "" {
				if err := r.store.AddMember(ctx, prefixOwner+c.UserID, id, 0); err != nil {
					return nil, err
				}
			}
		}
		return c, nil
	}
	return nil, ErrBusy
}

// RotateSecret gives a confidential client a new generated secret, which
// replaces the old one at once on every instance.
func (r *Registry) RotateSecret(ctx context.Context, id string) (*Client, string, error) {
	secret := NewSecret()
	c, err := r.Update(ctx, id, func(c *Client) error {
		if c.Public || c.KeyBased() {
			return errPublic
		}
		c.SecretSHA256 = Digest(secret)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

var errPublic = errors.New("the client has no secret to rotate")

// IsPublicClientError reports whether err says a client has no secret:
// a public one, or one that authenticates by key or certificate.
func IsPublicClientError(err error) bool { return errors.Is(err, errPublic) }

// Delete removes a dynamic client. Its tokens die with it: Validate and the
// token endpoint refuse tokens of unknown clients.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if _, static := r.static[id]; static {
		return ErrReadOnly
	}
	if !ValidID(id) {
		return ErrNotFound
	}
	b, err := r.store.Take(ctx, prefixClient+id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if err := r.store.Put(ctx, prefixGone+id, []byte("1"), 0); err != nil {
		return err
	}
	if err := r.store.RemoveMember(ctx, setAll, id); err != nil {
		return err
	}
	if c, err := decode(b); err == nil && c.UserID != "" {
		return r.store.RemoveMember(ctx, prefixOwner+c.UserID, id)
	}
	return nil
}

// List returns every dynamic client, sorted by id.
func (r *Registry) List(ctx context.Context) ([]*Client, error) {
	return r.list(ctx, setAll)
}

// Owned returns the dynamic clients a user owns, sorted by id.
func (r *Registry) Owned(ctx context.Context, userID string) ([]*Client, error) {
	if userID == "" {
		return nil, nil
	}
	out, err := r.list(ctx, prefixOwner+userID)
	// A client whose owner changed may linger in the old owner's set.
	return slices.DeleteFunc(out, func(c *Client) bool { return c.UserID != userID }), err
}

func (r *Registry) list(ctx context.Context, set string) ([]*Client, error) {
	ids, err := r.store.Members(ctx, set)
	if err != nil {
		return nil, err
	}
	sort.Strings(ids)
	out := make([]*Client, 0, len(ids))
	for _, id := range ids {
		_, c, err := r.get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			// Deleted meanwhile, or an unused registration the store
			// dropped when it expired: its id leaves the set too.
			if set == setAll {
				if err := r.store.RemoveMember(ctx, set, id); err != nil {
					return nil, err
				}
			}
			continue
		} else if err != nil {
			return nil, err
		}
		if r.expired(c) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// VerifySecret compares a presented secret with the stored digest in
// constant time.
func (c *Client) VerifySecret(secret string) bool {
	return !c.Public && !c.KeyBased() && subtle.ConstantTimeCompare([]byte(Digest(secret)), []byte(c.SecretSHA256)) == 1
}

// ValidID reports whether id can name a dynamic client: 1 to 128 URL-safe
// characters, so it travels in paths unescaped.
func ValidID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// NewID returns a fresh client_id with 128 random bits.
func NewID() string { return "c_" + random(16) }

// NewSecret returns a fresh client secret with 256 random bits.
func NewSecret() string { return random(32) }

// Digest is the stored form of a secret: its SHA-256, base64url encoded.
func Digest(secret string) string {
	d := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(d[:])
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decode(b []byte) (*Client, error) {
	c := new(Client)
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("decoding client record: %v", err)
	}
	return c, nil
}

func encode(c *Client) []byte {
	b, _ := json.Marshal(c)
	return b
}

// Interface guards
var (
	_ authz.ClientSource       = (*Registry)(nil)
	_ authz.ActingClientLister = (*Registry)(nil)
)
