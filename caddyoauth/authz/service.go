package authz

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	oerrors "github.com/go-oauth2/oauth2/v4/errors"
	"github.com/go-oauth2/oauth2/v4/manage"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/clientauth"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// ErrUnknownClient is returned by a ClientSource for a client_id it does not
// know.
var ErrUnknownClient = errors.New("unknown client")

// ClientLookupError is an ErrUnknownClient that says why the client
// could not be had, for the person at the authorization endpoint: Reason
// names nothing secret and nothing a remote party chose.
type ClientLookupError struct{ Reason string }

func (e *ClientLookupError) Error() string { return "unknown client: " + e.Reason }

// Is makes a ClientLookupError an ErrUnknownClient.
func (e *ClientLookupError) Is(target error) bool { return target == ErrUnknownClient }

// ClientSource finds clients by id.
type ClientSource interface {
	Client(ctx context.Context, id string) (*Client, error)
}

// StaticClients is a ClientSource of clients fixed in the config.
type StaticClients map[string]*Client

// Client implements ClientSource.
func (s StaticClients) Client(_ context.Context, id string) (*Client, error) {
	if c, ok := s[id]; ok {
		return c, nil
	}
	return nil, ErrUnknownClient
}

// Service is the authorization server: it issues, refreshes and validates
// tokens for its clients and users, keeping them in its store.
type Service struct {
	cfg     Config
	store   store.Store
	clients ClientSource
	users   Authenticator
	manager *manage.Manager
	log     *zap.Logger
	hooks   Hooks
	keys    *keyRing // JWT signing keys; nil for opaque tokens
	// idKeys sign ID tokens, by algorithm; nil without OpenID Connect.
	idKeys  map[string]*keyRing
	secrets *secretGuard
	// clientKeys checks the clients without a shared secret.
	clientKeys *clientauth.Verifier
}

// New builds a Service. users may be nil when no grant needs a person.
func New(cfg Config, s store.Store, clients ClientSource, users Authenticator, log *zap.Logger) *Service {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	svc := &Service{cfg: cfg, store: s, clients: clients, users: users, log: log, secrets: newSecretGuard()}
	svc.SetClientKeyOptions(clientauth.Options{})
	var static *signingKey
	if cfg.SigningKey != nil {
		k, err := newSigningKey(cfg.SigningKey, time.Now())
		if err != nil {
			panic(err) // ParseSigningKey admits only keys newSigningKey takes
		}
		static = k
	}
	if cfg.TokenFormat == FormatJWT {
		alg := algES256
		if static != nil {
			alg = static.alg
		}
		svc.keys = svc.newRing(alg, static)
	}
	svc.setupOpenID(static)

	m := manage.NewManager()
	m.MapTokenStorage(tokenStore{svc})
	m.MapClientStorage(clientStore{clients})
	m.MapAuthorizeGenerate(codeGenerator{})
	m.MapAccessGenerate(accessGenerator{svc})
	// Exact redirect URI matching instead of the library's host-suffix match.
	m.SetValidateURIHandler(exactRedirectURI)
	m.SetAuthorizeCodeExp(cfg.CodeTTL)
	// Fresh configs: the library's Default*Cfg values are shared globals.
	withRefresh := &manage.Config{AccessTokenExp: cfg.AccessTokenTTL, RefreshTokenExp: cfg.RefreshTokenTTL, IsGenerateRefresh: true}
	m.SetAuthorizeCodeTokenCfg(withRefresh)
	m.SetPasswordTokenCfg(&manage.Config{AccessTokenExp: cfg.AccessTokenTTL, RefreshTokenExp: cfg.RefreshTokenTTL, IsGenerateRefresh: true})
	m.SetClientTokenCfg(&manage.Config{AccessTokenExp: cfg.AccessTokenTTL})
	svc.manager = m
	return svc
}

// Store returns the service's store.
func (s *Service) Store() store.Store { return s.store }

// Clients returns the service's client source.
func (s *Service) Clients() ClientSource { return s.clients }

// exactRedirectURI accepts uri only when it equals one of the client's
// registered redirect URIs, which Client.GetDomain joins with newlines,
// or differs by its port alone from a loopback one marked as matching any
// port (RFC 8252 §7.3).
func exactRedirectURI(registered, uri string) error {
	for r := range strings.SplitSeq(registered, "\n") {
		if r != "" && r == uri {
			return nil
		}
		if loopback, ok := strings.CutPrefix(r, anyPortMark); ok && loopbackMatch(loopback, uri) {
			return nil
		}
	}
	return oerrors.ErrInvalidRedirectURI
}

// clientStore is go-oauth2's ClientStore over a ClientSource. An unknown
// client is invalid_client, where the library's own store gives a 500.
type clientStore struct{ src ClientSource }

func (c clientStore) GetByID(ctx context.Context, id string) (oauth2.ClientInfo, error) {
	if g := grantOf(ctx); g != nil && g.client.ID == id {
		return authenticatedClient{g.client}, nil
	}
	cl, err := c.src.Client(ctx, id)
	if errors.Is(err, ErrUnknownClient) {
		return nil, oerrors.ErrInvalidClient
	}
	if err != nil {
		return nil, err
	}
	return cl, nil
}

// accessGenerator makes access tokens in the configured format and refresh
// tokens of 256 random bits. It leaves out the refresh token for a client
// that may not use the refresh_token grant.
type accessGenerator struct{ svc *Service }

func (g accessGenerator) Token(ctx context.Context, data *oauth2.GenerateBasic, genRefresh bool) (string, string, error) {
	refresh := ""
	if genRefresh {
		if c, ok := asClient(data.Client); !ok || c.AllowsGrant(GrantRefreshToken) {
			refresh = randomToken()
		}
	}
	ti := data.TokenInfo
	aud := ""
	if gc := grantOf(ctx); gc != nil {
		aud = gc.accessResource
	}
	access, err := g.svc.newAccessToken(ctx, data.Client.GetID(), data.UserID, ti.GetScope(), aud, ti.GetAccessCreateAt(), ti.GetAccessExpiresIn())
	return access, refresh, err
}

// codeGenerator makes authorization codes of 256 random bits.
type codeGenerator struct{}

func (codeGenerator) Token(context.Context, *oauth2.GenerateBasic) (string, error) {
	return randomToken(), nil
}

// usedCodeTTL is how long a redeemed code is remembered so a replay can
// revoke its tokens: as long as those tokens may live.
func (s *Service) usedCodeTTL() time.Duration {
	if s.cfg.RefreshTokenTTL > 0 {
		return s.cfg.RefreshTokenTTL
	}
	return 30 * 24 * time.Hour
}

// load reads and decodes the record under key, authoritatively.
func (s *Service) load(ctx context.Context, key string) (*record, error) {
	b, err := s.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return decodeRecord(b)
}

// saveTokens writes an access token and, when refresh is set, its refresh
// token, and indexes them in their user's set so they can be revoked
// together (token_index.go). It is the token endpoint's hot path, so the writes go to the
// store as one batch (one transaction and one file append in the file
// store).
func (s *Service) saveTokens(ctx context.Context, access string, at *record, refresh string, rt *record) error {
	now := time.Now()
	at.noteJWT(access)
	ak := accessKey(access)
	keys := []string{ak}
	// indexed are the keys the grant's set holds (tokenIndex): the access token
	// only when its refresh record cannot reach it (token_index.go).
	var indexed []string
	if indexesAccess(at, rt) {
		indexed = append(indexed, ak)
	}
	life := at.ttl(now)
	writes := make([]store.Write, 0, 4)
	if rt != nil {
		rk := refreshKey(refresh)
		at.Pair, rt.Pair = rk, ak
		writes = append(writes, store.Write{Key: rk, Value: rt.encode(), TTL: rt.ttl(now)})
		keys = append(keys, rk)
		indexed = append(indexed, rk)
		life = maxTTL(life, rt.ttl(now))
	}
	writes = append(writes, store.Write{Key: ak, Value: at.encode(), TTL: at.ttl(now)})
	if set := tokenIndex(at.UserID, at.Family); set != "" {
		for _, k := range indexed {
			writes = append(writes, store.Write{Set: set, Key: k, TTL: life})
		}
	}
	if err := store.WriteBatch(ctx, s.store, writes); err != nil {
		return err
	}
	if err := s.withdrawIfRevoked(ctx, at.Family, keys...); err != nil {
		return err
	}
	return s.withdrawIfUserRevoked(ctx, at.UserID, at.IssuedAt, keys...)
}

// withdrawIfRevoked deletes keys just added to family when the family was
// revoked meanwhile. A revocation marks the family before listing its
// members and a grant adds its members before checking the mark, so one of
// the two always sees the other: no token outlives its family's
// revocation, however the two race. The grant still answers with the
// (dead) tokens, as it would had the revocation come a moment later.
func (s *Service) withdrawIfRevoked(ctx context.Context, family string, keys ...string) error {
	if family == "" {
		return nil
	}
	_, err := s.store.Get(ctx, familyRevokedKey(family))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	s.log.Warn("tokens issued to a family revoked meanwhile are withdrawn", zap.String("family", family))
	return s.store.Delete(ctx, keys...)
}

// maxTTL is the longer of two store lifetimes, where 0 means forever.
func maxTTL(a, b time.Duration) time.Duration {
	if a == 0 || b == 0 {
		return 0
	}
	return max(a, b)
}

// RevokeFamily ends every token descended from one grant of userID (""
// for a client's own grant).
func (s *Service) RevokeFamily(ctx context.Context, userID, family string) error {
	if family == "" {
		return nil
	}
	n, err := s.revokeFamily(ctx, userID, family)
	if err != nil {
		return err
	}
	s.log.Info("tokens revoked", zap.String("reason", "grant"), zap.Int("tokens", n))
	return nil
}

// RevokeUser ends every token of a user. The families of the user's
// tokens are marked revoked as RevokeFamily marks them, so a refresh
// racing the revocation cannot leave a working token behind.
//
// It also ends the user's sign-in sessions and unredeemed authorization
// codes, suspends the clients acting as the user, and withdraws tokens
// issued to the user while it runs (user_revocation.go): the mark that
// refuses them is written first, so nothing the user holds outlives a
// revocation that returned nil.
func (s *Service) RevokeUser(ctx context.Context, userID string) error {
	began := time.Now()
	if err := s.markUserRevoked(ctx, userID, began); err != nil {
		return err
	}
	if err := s.suspendActingClients(ctx, userID); err != nil {
		return err
	}
	n, _, err := s.revokeMatching(ctx, userSet(userID), nil)
	if err != nil {
		return err
	}
	if err := s.store.DeleteSet(ctx, userSet(userID)); err != nil {
		return err
	}
	if err := s.markUserRevocationDone(ctx, userID, began); err != nil {
		return err
	}
	if err := s.logoutUser(ctx, userID); err != nil {
		return err
	}
	s.log.Info("tokens revoked", zap.String("reason", "user"), zap.String("user_id", userID), zap.Int("tokens", n))
	return nil
}

// Interface guards
var (
	_ oauth2.ClientStore            = clientStore{}
	_ oauth2.AccessGenerate         = accessGenerator{}
	_ oauth2.AuthorizeGenerate      = codeGenerator{}
	_ oauth2.ClientInfo             = (*Client)(nil)
	_ oauth2.ClientPasswordVerifier = (*Client)(nil)
)
