package authz

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"read", []string{"read"}, true},
		{"read write read", []string{"read", "write"}, true},
		{"urn:x:y!#$%&'()*+,-./:;<=>?@[]^_`{|}~", []string{"urn:x:y!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}, true},
		{" read", nil, false},
		{"read ", nil, false},
		{"read  write", nil, false},
		{"read\twrite", nil, false},
		{`re"ad`, nil, false},
		{`re\ad`, nil, false},
		{"réad", nil, false},
		{"read\x00", nil, false},
	}
	for _, tc := range tests {
		got, ok := ParseScope(tc.in)
		if ok != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("ParseScope(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if !HasScopes("read write", []string{"write", "read"}) || HasScopes("read", []string{"write"}) || HasScopes("readwrite", []string{"read"}) {
		t.Fatal("HasScopes")
	}
}

// FuzzParseScope: ParseScope never panics, accepts only RFC 6749 §3.3
// scope tokens, and JoinScope gives back a string it parses the same.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "read", "read write", "a  b", " x", "\"", "é", "read read"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, ok := ParseScope(s)
		if !ok {
			return
		}
		for _, tok := range toks {
			if !validScopeToken(tok) || strings.Contains(tok, " ") {
				t.Fatalf("ParseScope(%q) accepted token %q", s, tok)
			}
		}
		again, ok := ParseScope(JoinScope(toks))
		if !ok || !slices.Equal(again, toks) {
			t.Fatalf("round trip of %q: %q then %q", s, toks, again)
		}
	})
}

// FuzzTokenRequest: reading the token endpoint's form and authenticating
// its client never panics, and every refusal is an OAuth error of the 4xx
// kind (the store here is healthy).
func FuzzTokenRequest(f *testing.F) {
	svc := New(testConfig, nil, testClients(), nil, nil)
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials", "Basic "+b64("conf:"+confSecret), "")
	f.Add("application/x-www-form-urlencoded", "client_id=conf&client_secret=x&client_secret=y", "", "")
	f.Add("application/x-www-form-urlencoded;charset=utf-8", "client_id=pub", "", "")
	f.Add("multipart/form-data; boundary=x", "--x--", "Basic !!", "Basic Og==")
	f.Add("application/x-www-form-urlencoded", "%zz=1;a=b", "bAsIc "+b64("%41:%"), "")
	f.Fuzz(func(t *testing.T, contentType, body, authz1, authz2 string) {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if authz1 != "" {
			r.Header.Add("Authorization", authz1)
		}
		if authz2 != "" {
			r.Header.Add("Authorization", authz2)
		}
		w := httptest.NewRecorder()
		form, err := ReadForm(w, r, 1024)
		if err != nil {
			checkClientError(t, err)
			return
		}
		c, _, err := svc.AuthenticateClient(r.Context(), r, form)
		if err != nil {
			checkClientError(t, err)
			return
		}
		if c == nil {
			t.Fatal("no client and no error")
		}
	})
}

func checkClientError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Code == "" {
		t.Fatalf("refusal %v is not a 4xx OAuth error", err)
	}
}
