package authz

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	oerrors "github.com/go-oauth2/oauth2/v4/errors"
	"github.com/go-oauth2/oauth2/v4/models"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// extFamily is the token extension go-oauth2 carries from an authorization
// code to the tokens issued for it; it names the grant family.
const extFamily = "fam"

// tokenStore is go-oauth2's TokenStore over a store.Store, keyed by digest.
// Lookups return the presented plaintext in the looked-up field, which is
// what the manager compares against.
type tokenStore struct {
	svc *Service
}

func familyOf(ti oauth2.TokenInfo) string {
	if e, ok := ti.(oauth2.ExtendableTokenInfo); ok && e.GetExtension() != nil {
		return e.GetExtension().Get(extFamily)
	}
	return ""
}

// Create implements oauth2.TokenStore.
func (ts tokenStore) Create(ctx context.Context, ti oauth2.TokenInfo) error {
	now := time.Now()
	fam := familyOf(ti)
	if code := ti.GetCode(); code != "" {
		if fam == "" {
			fam = newFamily()
		}
		r := &record{
			ClientID:        ti.GetClientID(),
			UserID:          ti.GetUserID(),
			Scope:           ti.GetScope(),
			RedirectURI:     ti.GetRedirectURI(),
			Family:          fam,
			Challenge:       ti.GetCodeChallenge(),
			ChallengeMethod: ti.GetCodeChallengeMethod().String(),
			IssuedAt:        ti.GetCodeCreateAt().UnixNano(),
			ExpiresAt:       expiresAt(ti.GetCodeCreateAt(), ti.GetCodeExpiresIn()),
			AccessTTL:       int64(ti.GetAccessExpiresIn()),
			Resource:        codeResourceOf(ctx),
		}
		return ts.svc.store.Create(ctx, codeKey(code), r.encode(), r.ttl(now))
	}
	var grant grantKind
	var grantRes, accessRes string
	if g := grantOf(ctx); g != nil {
		grant = kindOf(g.grant)
		grantRes, accessRes = g.grantResource, g.accessResource
	}
	at := &record{
		ClientID:  ti.GetClientID(),
		UserID:    ti.GetUserID(),
		Scope:     ti.GetScope(),
		Family:    fam,
		IssuedAt:  ti.GetAccessCreateAt().UnixNano(),
		ExpiresAt: expiresAt(ti.GetAccessCreateAt(), ti.GetAccessExpiresIn()),
		Grant:     grant,
		Resource:  accessRes,
	}
	var rt *record
	if ti.GetRefresh() != "" {
		rt = &record{
			ClientID:  ti.GetClientID(),
			UserID:    ti.GetUserID(),
			Scope:     ti.GetScope(),
			Family:    fam,
			IssuedAt:  ti.GetRefreshCreateAt().UnixNano(),
			ExpiresAt: expiresAt(ti.GetRefreshCreateAt(), ti.GetRefreshExpiresIn()),
			Grant:     grant,
			Resource:  grantRes,
		}
		if rt.Family == "" {
			rt.Family = newFamily()
			at.Family = rt.Family
		}
	}
	if b := bindingOf(ctx); b != nil {
		at.Cnf = b.access
		if rt != nil {
			rt.Cnf = b.refresh
		}
	}
	return ts.svc.saveTokens(ctx, ti.GetAccess(), at, ti.GetRefresh(), rt)
}

// RemoveByCode implements oauth2.TokenStore. It consumes the code
// atomically (Take): of racing redemptions exactly one gets nil, the others
// ErrInvalidAuthorizeCode. The code leaves a marker naming its family, so a
// replay can revoke what the code was exchanged for. The marker is written
// before the code is taken, not after: a racing redemption that finds the
// code gone must find the marker too, or the winner's tokens would survive
// the replay (RFC 6749 §4.1.2), which on instances sharing a store is a
// window of a network round trip.
func (ts tokenStore) RemoveByCode(ctx context.Context, code string) error {
	b, err := ts.svc.store.Get(ctx, codeKey(code))
	if errors.Is(err, store.ErrNotFound) {
		return oerrors.ErrInvalidAuthorizeCode
	} else if err != nil {
		return err
	}
	r, err := decodeRecord(b)
	if err != nil {
		return err
	}
	if err := ts.svc.store.Put(ctx, usedCodeKey(code), usedCodeMarker(r.Family, r.UserID), ts.svc.usedCodeTTL()); err != nil {
		return err
	}
	if _, err := ts.svc.store.Take(ctx, codeKey(code)); errors.Is(err, store.ErrNotFound) {
		return oerrors.ErrInvalidAuthorizeCode
	} else if err != nil {
		return err
	}
	return nil
}

// usedCodeMarker is the value of a redeemed code's marker: the family its
// tokens belong to and their user, whose set indexes them (token_index.go).
func usedCodeMarker(family, userID string) []byte {
	return []byte(family + "\x00" + userID)
}

// parseUsedCodeMarker reads a marker; one written before markers named the
// user holds the family alone, indexed by a family set of its own.
func parseUsedCodeMarker(b []byte) (family, userID string) {
	family, userID, _ = strings.Cut(string(b), "\x00")
	return family, userID
}

// RemoveByAccess implements oauth2.TokenStore.
func (ts tokenStore) RemoveByAccess(ctx context.Context, access string) error {
	return ts.svc.store.Delete(ctx, accessKey(access))
}

// RemoveByRefresh implements oauth2.TokenStore.
func (ts tokenStore) RemoveByRefresh(ctx context.Context, refresh string) error {
	return ts.svc.store.Delete(ctx, refreshKey(refresh))
}

// GetByCode implements oauth2.TokenStore.
func (ts tokenStore) GetByCode(ctx context.Context, code string) (oauth2.TokenInfo, error) {
	r, err := ts.svc.load(ctx, codeKey(code))
	if err != nil {
		return nil, notFoundAs(err, oerrors.ErrInvalidAuthorizeCode)
	}
	// The code of a user revoked since it was issued is spent.
	if revoked, err := ts.svc.revokedSince(ctx, r.UserID, r.IssuedAt); err != nil {
		return nil, err
	} else if revoked {
		return nil, oerrors.ErrInvalidAuthorizeCode
	}
	t := r.token()
	// A scope the client lost since the code was issued is not granted.
	// The resources the token request names must be among those the code
	// was issued for (RFC 8707 §2.2); checked before the code is consumed,
	// and only for its own client, which alone may learn of it.
	if g := grantOf(ctx); g != nil && g.client.ID == r.ClientID {
		t.Scope = g.client.allowedScope(t.Scope)
		aud, ok := narrowResources(r.Resource, g.requested)
		if !ok {
			return nil, errInvalidTarget("the resource was not authorized for this code")
		}
		g.grantResource, g.accessResource = r.Resource, aud
	}
	t.Code = code
	t.CodeCreateAt = time.Unix(0, r.IssuedAt)
	t.CodeExpiresIn = time.Duration(r.ExpiresAt - r.IssuedAt)
	t.AccessExpiresIn = time.Duration(r.AccessTTL)
	t.RedirectURI = r.RedirectURI
	t.CodeChallenge = r.Challenge
	t.CodeChallengeMethod = r.ChallengeMethod
	return t, nil
}

// GetByAccess implements oauth2.TokenStore.
func (ts tokenStore) GetByAccess(ctx context.Context, access string) (oauth2.TokenInfo, error) {
	r, err := ts.svc.load(ctx, accessKey(access))
	if err != nil {
		return nil, notFoundAs(err, oerrors.ErrInvalidAccessToken)
	}
	t := r.token()
	t.Access = access
	t.AccessCreateAt = time.Unix(0, r.IssuedAt)
	t.AccessExpiresIn = r.lifetime()
	return t, nil
}

// GetByRefresh implements oauth2.TokenStore.
func (ts tokenStore) GetByRefresh(ctx context.Context, refresh string) (oauth2.TokenInfo, error) {
	r, err := ts.svc.load(ctx, refreshKey(refresh))
	if err != nil {
		return nil, notFoundAs(err, oerrors.ErrInvalidRefreshToken)
	}
	t := r.token()
	t.Refresh = refresh
	t.RefreshCreateAt = time.Unix(0, r.IssuedAt)
	t.RefreshExpiresIn = r.lifetime()
	return t, nil
}

func (r *record) token() *models.Token {
	return &models.Token{
		ClientID:  r.ClientID,
		UserID:    r.UserID,
		Scope:     r.Scope,
		Extension: url.Values{extFamily: {r.Family}},
	}
}

func (r *record) lifetime() time.Duration {
	if r.ExpiresAt == 0 {
		return 0
	}
	return time.Duration(r.ExpiresAt - r.IssuedAt)
}

func notFoundAs(err, as error) error {
	if errors.Is(err, store.ErrNotFound) {
		return as
	}
	return err
}

// Interface guards
var _ oauth2.TokenStore = tokenStore{}
