package authz

import (
	"context"
	"net/url"
	"testing"
)

// FuzzValidateJWT: no token that the service did not issue validates, and
// none makes Validate panic or fail with anything but a refusal.
func FuzzValidateJWT(f *testing.F) {
	s, _ := jwtService(f, nil)
	issued := call(f, s.ServeToken, url.Values{"grant_type": {"client_credentials"}}, as("app")).str("access_token")
	f.Add(issued)
	f.Add(issued[:len(issued)-2])
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.")
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		_, err := s.Validate(context.Background(), token)
		if token == issued {
			if err != nil {
				t.Fatalf("issued token refused: %v", err)
			}
			return
		}
		if err != ErrTokenInvalid && err != ErrTokenExpired {
			t.Fatalf("token %q: err = %v, want a refusal", token, err)
		}
	})
}
