package dpop

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// mapReplay is a ReplayCache in a map, cheap enough for fuzzing.
type mapReplay struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *mapReplay) FirstUse(_ context.Context, key string, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[key] {
		return false, nil
	}
	m.seen[key] = true
	return true, nil
}

// FuzzVerify: whatever a client sends, Verify answers with a proof or an
// *Error carrying an RFC 9449 code, and never panics.
func FuzzVerify(f *testing.F) {
	k := keyFor(f, "ES256")
	c := claims()
	c["ath"] = AccessTokenHash("tok")
	f.Add(k.good(f, c), "GET", testURL, "tok")
	f.Add(keyFor(f, "EdDSA").good(f, claims()), "GET", testURL+"?x", "")
	f.Add(keyFor(f, "RS256").good(f, claims()), "GET", "HTTPS://API.example.com:443/resource", "")
	f.Add("eyJhbGciOiJub25lIn0.e30.", "POST", "https://h/", "")
	f.Add("..", "", "", "")
	nonces, err := NewHMACNonces(make([]byte, 32), time.Minute, func() time.Time { return t0 })
	if err != nil {
		f.Fatal(err)
	}
	plain, err := NewVerifier(Config{Replay: &mapReplay{seen: map[string]bool{}}, Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	withNonce, err := NewVerifier(Config{Replay: &mapReplay{seen: map[string]bool{}}, Nonces: nonces, Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, proof, method, url, token string) {
		for _, v := range []*Verifier{plain, withNonce} {
			p, err := v.Verify(context.Background(), Request{Method: method, URL: url, Proofs: []string{proof}, AccessToken: token})
			if err == nil {
				if p == nil || p.JKT == "" {
					t.Fatal("accepted without a key thumbprint")
				}
				continue
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %v", err)
			}
			switch e.Code {
			case CodeInvalidProof, CodeUseNonce, CodeInvalidToken:
			default:
				t.Fatalf("code %q", e.Code)
			}
			_ = v.Challenge(err)
		}
	})
}
