package authz

import (
	"net/http"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name         string
		values       []string
		token        string
		found, valid bool
	}{
		{"none", nil, "", false, true},
		{"bearer", []string{"Bearer abc.DEF-_~+/="}, "abc.DEF-_~+/=", true, true},
		{"lower case scheme", []string{"bearer abc"}, "abc", true, true},
		{"mixed case scheme", []string{"BeArEr abc"}, "abc", true, true},
		{"several spaces", []string{"Bearer   abc"}, "abc", true, true},
		{"padding", []string{"Bearer abc=="}, "abc==", true, true},
		{"basic is not bearer", []string{"Basic YTpi"}, "", false, true},
		{"scheme prefix only", []string{"Bearerabc"}, "", false, true},
		{"empty value", []string{""}, "", false, true},
		{"no token", []string{"Bearer"}, "", true, false},
		{"blank token", []string{"Bearer "}, "", true, false},
		{"two tokens", []string{"Bearer abc def"}, "", true, false},
		{"padding in the middle", []string{"Bearer ab=c"}, "", true, false},
		{"only padding", []string{"Bearer =="}, "", true, false},
		{"quote", []string{`Bearer "abc"`}, "", true, false},
		{"comma", []string{"Bearer abc,def"}, "", true, false},
		{"non-ASCII", []string{"Bearer abé"}, "", true, false},
		{"two headers", []string{"Bearer abc", "Bearer def"}, "", true, false},
		{"bearer and basic", []string{"Basic YTpi", "Bearer abc"}, "", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add("Authorization", v)
			}
			token, found, ok := BearerToken(h)
			if token != tc.token || found != tc.found || ok != tc.valid {
				t.Fatalf("BearerToken(%q) = %q, %v, %v; want %q, %v, %v", tc.values, token, found, ok, tc.token, tc.found, tc.valid)
			}
		})
	}
}

// FuzzBearerToken: BearerToken never panics, and a token it returns is a
// non-empty RFC 6750 b64token that the header carried.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a=", "Basic x", "Bearer", "Bearer  a b", "Bearer =", "\x00"} {
		f.Add(s, "")
	}
	f.Add("Bearer a", "Bearer b")
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		h := http.Header{}
		h.Add("Authorization", v1)
		if v2 != "" {
			h.Add("Authorization", v2)
		}
		token, found, ok := BearerToken(h)
		if !ok || !found {
			if token != "" {
				t.Fatalf("a token %q with found=%v ok=%v", token, found, ok)
			}
			return
		}
		if v2 != "" {
			t.Fatal("a token from two Authorization headers")
		}
		if !isB64Token(token) || !strings.HasSuffix(v1, token) || !strings.EqualFold(v1[:6], "bearer") {
			t.Fatalf("BearerToken(%q) = %q", v1, token)
		}
	})
}
