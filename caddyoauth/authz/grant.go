package authz

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// record is what the store keeps for an authorization code, an access token
// or a refresh token, under the digest of the token: never the token itself.
// It is stored in the binary form of record_codec.go; the JSON tags read
// the records written before it.
type record struct {
	ClientID        string `json:"cid"`
	UserID          string `json:"uid,omitempty"`
	Scope           string `json:"scp,omitempty"`
	RedirectURI     string `json:"ru,omitempty"`
	Family          string `json:"fam,omitempty"` // the grant all tokens of one authorization descend from
	Challenge       string `json:"cc,omitempty"`
	ChallengeMethod string `json:"ccm,omitempty"`
	IssuedAt        int64  `json:"iat"`           // unix nanoseconds
	ExpiresAt       int64  `json:"exp,omitempty"` // unix nanoseconds; 0: never
	AccessTTL       int64  `json:"attl,omitempty"`
	Pair            string `json:"pair,omitempty"` // key of the token issued together with this one
	RotatedAt       int64  `json:"rot,omitempty"`  // refresh tokens: when they were first used under rotation
	JTI             string `json:"jti,omitempty"`  // JWT access tokens: their jti, iss and aud claims
	Issuer          string `json:"iss,omitempty"`
	Audience        string `json:"aud,omitempty"`
	// Refresh tokens under rotation: the key of the refresh token this one
	// was rotated from, and whether a token rotated from this one has been
	// used, which ends this one's grace period (refresh.go).
	Parent        string `json:"prt,omitempty"`
	SuccessorUsed bool   `json:"sused,omitempty"`
	// Grant is the grant type the tokens of this record's family came
	// from, so a use can be refused once the client loses it; none in
	// records written before it was kept (never in JSON ones), and for
	// tokens IssueTokens made.
	Grant grantKind `json:"-"`
	// Resource is what the token is for (RFC 8707): the canonical resource
	// identifiers separated by spaces; empty for every resource. For an
	// access token, its audience; for a code or a refresh token, the
	// resources its grant covers.
	Resource string `json:"res,omitempty"`
	// Cnf is what the token is bound to (sender.go); nil for a bearer
	// token, and in every record written before it was kept.
	Cnf *Confirmation `json:"-"`
}

// grantKind is a grant type in one byte, which fits in the record's
// padding: Validate decodes a record on every request.
type grantKind uint8

const (
	grantNone grantKind = iota
	grantCode
	grantPassword
	grantClientCredentials
	grantRefresh
	grantKinds // the number of kinds
)

var grantNames = [grantKinds]string{grantCode: GrantAuthorizationCode, grantPassword: GrantPassword,
	grantClientCredentials: GrantClientCredentials, grantRefresh: GrantRefreshToken}

// kindOf is the kind of a grant type name; grantNone for another name.
func kindOf(name string) grantKind {
	for k, n := range grantNames {
		if k != 0 && n == name {
			return grantKind(k)
		}
	}
	return grantNone
}

// String is the grant type's name; empty for grantNone.
func (k grantKind) String() string {
	if k < grantKinds {
		return grantNames[k]
	}
	return ""
}

func (r *record) expired(now time.Time) bool {
	return r.ExpiresAt != 0 && now.UnixNano() >= r.ExpiresAt
}

// ttl is what is left of the record's life, for the store's expiry; 0 for
// a record that never expires.
func (r *record) ttl(now time.Time) time.Duration {
	if r.ExpiresAt == 0 {
		return 0
	}
	left := time.Duration(r.ExpiresAt - now.UnixNano())
	if left < time.Millisecond {
		left = time.Millisecond
	}
	return left
}

// Store keys. Tokens and codes appear only as their SHA-256 digest.
const (
	prefixCode       = "code:"
	prefixUsedCode   = "usedcode:"
	prefixAccess     = "at:"
	prefixRefresh    = "rt:"
	setFamily        = "fam:"
	setUser          = "user:"
	prefixFamRevoked = "famrev:"
)

// digest is the store key part of a token or code.
func digest(token string) string {
	d := sha256.Sum256([]byte(token))
	var b [43]byte // base64url of 32 bytes, unpadded; one allocation, the string
	base64.RawURLEncoding.Encode(b[:], d[:])
	return string(b[:])
}

func codeKey(code string) string     { return prefixCode + digest(code) }
func usedCodeKey(code string) string { return prefixUsedCode + digest(code) }
func accessKey(token string) string  { return prefixAccess + digest(token) }
func refreshKey(token string) string { return prefixRefresh + digest(token) }
func familySet(family string) string { return setFamily + family }
func userSet(userID string) string   { return setUser + userID }

// familyRevokedKey marks a revoked family, so tokens a racing grant adds to
// it after the revocation listed its members are withdrawn too.
func familyRevokedKey(family string) string { return prefixFamRevoked + family }
func expiresAt(t time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return t.Add(ttl).UnixNano()
}

// randomToken returns 256 bits from the system's CSPRNG, base64url encoded.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// newFamily returns a fresh grant family id.
func newFamily() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
