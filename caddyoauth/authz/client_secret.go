package authz

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/http"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// A secret_hash (bcrypt) costs a bcrypt comparison to check, about 1.3 s
// of CPU at cost 14, and anyone who knows a client_id can ask for one.
// So client authentication is bounded work whoever calls:
//
//   - a secret verified once is remembered for verifiedSecretTTL as an
//     HMAC under a key made at start-up, so a good client pays bcrypt once
//     per instance and config, not per request;
//   - the lockout (Hooks.ClientLocked, Hooks.ClientAuthResult) counts
//     failed comparisons per client and address and per address, and a
//     locked attempt is refused without a comparison;
//   - at most bcryptSlots comparisons run at once; a request that finds
//     no slot within bcryptWait is refused with 503
//     temporarily_unavailable: the gateway is busy, not the caller too
//     fast, and the SHA-256 secrets and tokens keep the remaining CPU.
const (
	verifiedSecretTTL  = 10 * time.Minute
	maxVerifiedSecrets = 4096
	bcryptWait         = time.Second
)

// bcryptSlots is how many bcrypt comparisons of client secrets may run at
// once: half the CPUs the process may use, at least one.
func bcryptSlots() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// compareBcrypt is the bcrypt comparison; tests count its calls.
var compareBcrypt = bcrypt.CompareHashAndPassword

// errSecretBusy refuses a client authentication that found no free bcrypt
// slot in time.
var errSecretBusy = func() *Error {
	e := oauthErr("temporarily_unavailable", http.StatusServiceUnavailable,
		"too many client authentications at once; retry later")
	e.RetryAfter = time.Second
	return e
}()

// secretGuard bounds and remembers the bcrypt checks of client secrets.
type secretGuard struct {
	slots chan struct{}
	wait  time.Duration
	key   [32]byte

	mu       sync.Mutex
	verified map[string]verifiedSecret // by client_id
}

type verifiedSecret struct {
	mac   [sha256.Size]byte
	until time.Time
}

func newSecretGuard() *secretGuard {
	g := &secretGuard{slots: make(chan struct{}, bcryptSlots()), wait: bcryptWait, verified: map[string]verifiedSecret{}}
	if _, err := rand.Read(g.key[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return g
}

// mac binds a secret to the client and its hash, so a remembered secret
// stops matching when either changes.
func (g *secretGuard) mac(c *Client, secret string) (sum [sha256.Size]byte) {
	m := hmac.New(sha256.New, g.key[:])
	for _, part := range [][]byte{[]byte(c.ID), c.secretBcrypt, []byte(secret)} {
		writeLenPrefixed(m, part)
	}
	m.Sum(sum[:0])
	return sum
}

func writeLenPrefixed(h io.Writer, b []byte) {
	var n [binary.MaxVarintLen64]byte
	_, _ = h.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	_, _ = h.Write(b)
}

// recall reports whether secret was verified for c recently.
func (g *secretGuard) recall(c *Client, secret string) bool {
	g.mu.Lock()
	v, ok := g.verified[c.ID]
	g.mu.Unlock()
	if !ok || !time.Now().Before(v.until) {
		return false
	}
	mac := g.mac(c, secret)
	return hmac.Equal(mac[:], v.mac[:])
}

// remember notes a verified secret. Only a caller who knows a secret adds
// an entry, one per client; the bound is for a registry of many clients.
func (g *secretGuard) remember(c *Client, secret string) {
	v := verifiedSecret{mac: g.mac(c, secret), until: time.Now().Add(verifiedSecretTTL)}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.verified[c.ID]; !ok && len(g.verified) >= maxVerifiedSecrets {
		now := time.Now()
		for id, e := range g.verified {
			if !now.Before(e.until) {
				delete(g.verified, id)
			}
		}
		if len(g.verified) >= maxVerifiedSecrets {
			return
		}
	}
	g.verified[c.ID] = v
}

// acquire takes a bcrypt slot, waiting for one at most g.wait, and
// returns its release.
func (g *secretGuard) acquire(ctx context.Context) (release func(), err error) {
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, errSecretBusy
}

// verifySecret checks the secret a request presents for the confidential
// client c. A SHA-256 secret is compared at once; a bcrypt one goes
// through the guard (see above). It returns nil or the error to answer.
func (s *Service) verifySecret(r *http.Request, c *Client, secret string) error {
	if len(c.secretBcrypt) == 0 || c.hasDigest {
		if c.VerifySecret(secret) {
			return nil
		}
		return errInvalidClient("client authentication failed")
	}
	g := s.secrets
	if g.recall(c, secret) {
		return nil
	}
	if err := s.clientLocked(r, c.ID); err != nil {
		return err
	}
	release, err := g.acquire(r.Context())
	if err != nil {
		s.log.Info("client authentication refused: every bcrypt slot is busy", zap.String("client_id", c.ID))
		return err
	}
	// Failures counted while this request waited may have locked it.
	if err := s.clientLocked(r, c.ID); err != nil {
		release()
		return err
	}
	ok := compareBcrypt(c.secretBcrypt, []byte(secret)) == nil
	release()
	if s.hooks.ClientAuthResult != nil {
		s.hooks.ClientAuthResult(r, c.ID, ok)
	}
	if !ok {
		return errInvalidClient("client authentication failed")
	}
	g.remember(c, secret)
	return nil
}

// clientLocked asks Hooks.ClientLocked whether the client's secret may be
// checked from this request's address.
func (s *Service) clientLocked(r *http.Request, clientID string) error {
	if s.hooks.ClientLocked == nil {
		return nil
	}
	wait := s.hooks.ClientLocked(r, clientID)
	if wait <= 0 {
		return nil
	}
	s.log.Info("client authentication locked: too many failures", zap.String("client_id", clientID))
	e := errInvalidClient("too many failed client authentications; retry later")
	e.RetryAfter = wait
	return e
}
