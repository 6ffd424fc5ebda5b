package authz

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
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
	svc := New(testConfig(), nil, testClients(), nil, nil)
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

// FuzzReadForm: ReadForm never panics on any body, refuses with
// invalid_request only, and what it accepts respects every bound.
func FuzzReadForm(f *testing.F) {
	for _, s := range []string{"", "a=1", "a=1&a=2", "a=%zz", "grant_type=password&username=u&password=p",
		strings.Repeat("x=1&", 40), "=&=&", "a;b=1", "%00=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := ReadForm(httptest.NewRecorder(), newFormRequest("/oauth/token", body), MaxTokenRequestBody)
		if err != nil {
			if e := asOAuthError(err); e.Code != "invalid_request" || e.Status != 400 {
				t.Fatalf("ReadForm(%q) error %+v, want invalid_request 400", body, e)
			}
			return
		}
		if len(form) > MaxFormParams {
			t.Fatalf("ReadForm accepted %d parameters", len(form))
		}
		for name, vals := range form {
			if len(vals) != 1 || len(name) > MaxFormNameLength || len(vals[0]) > MaxFormValueLength {
				t.Fatalf("ReadForm accepted %q = %q", name, vals)
			}
		}
	})
}

// FuzzRedirectURI: the redirect URI check accepts a URI only when it is
// byte-for-byte one of the registered ones: no prefix, suffix, case or
// host-suffix match. The one exception is a registered loopback URI marked
// as matching any port, which the URI may differ from by its port alone.
func FuzzRedirectURI(f *testing.F) {
	f.Add("https://a.example.com/cb\nhttps://b.example.com/cb", "https://a.example.com/cb")
	f.Add("https://a.example.com/cb", "https://evil-a.example.com/cb")
	f.Add("https://a.example.com/cb", "https://a.example.com/cb/../x")
	f.Add("https://a.example.com", "HTTPS://A.EXAMPLE.COM")
	f.Add("\n\n", "")
	f.Add("*http://127.0.0.1/cb", "http://127.0.0.1:8080/cb")
	f.Add("*http://127.0.0.1/cb", "http://127.0.0.1:8080@evil.example/cb")
	f.Add("*http://localhost:3000/cb", "http://localhost.evil.example/cb")
	f.Fuzz(func(t *testing.T, registered, uri string) {
		err := exactRedirectURI(registered, uri)
		listed := false
		for _, r := range strings.Split(registered, "\n") {
			listed = listed || (r != "" && r == uri)
			if loopback, ok := strings.CutPrefix(r, "*"); ok && samePortless(loopback, uri) {
				listed = true
			}
		}
		if (err == nil) != listed {
			t.Fatalf("exactRedirectURI(%q, %q) = %v, but listed = %v", registered, uri, err, listed)
		}
	})
}

// FuzzDecodeRecord: decodeRecord never panics on arbitrary bytes, and what
// it accepts and what encode writes decode to the same record again.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range codecRecords() {
		f.Add(r.encode(), r.ClientID, r.Pair, r.IssuedAt, r.ExpiresAt)
	}
	f.Add([]byte(`{"cid":"app","iat":1,"pair":"at:x"}`), "", "", int64(0), int64(0))
	f.Add([]byte{recordV1, 0xff}, "x", accessKey("t"), int64(-1), int64(1))
	f.Fuzz(func(t *testing.T, b []byte, s, pair string, iat, exp int64) {
		if r, err := decodeRecord(b); err == nil {
			again, err := decodeRecord(r.encode())
			if err != nil || !reflect.DeepEqual(again, r) {
				t.Fatalf("re-encoding %+v decoded to %+v, %v", r, again, err)
			}
		}
		r := &record{ClientID: s, Scope: s, Pair: pair, IssuedAt: iat, ExpiresAt: exp, RotatedAt: exp, JTI: s,
			Parent: pair, SuccessorUsed: iat%2 == 0}
		got, err := decodeRecord(r.encode())
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip of %+v: %+v, %v", r, got, err)
		}
	})
}

// loopbackURI is the oracle's reading of an http loopback URI: its host as
// written, an optional decimal port, then a path or query with no fragment.
var loopbackURI = regexp.MustCompile(`^http://(127\.0\.0\.1|\[::1\]|localhost)(?::[0-9]{1,5})?((?:[/?][^#]*)?)$`)

// samePortless reports whether two loopback URIs differ by their port at
// most.
func samePortless(a, b string) bool {
	ma, mb := loopbackURI.FindStringSubmatch(a), loopbackURI.FindStringSubmatch(b)
	return ma != nil && mb != nil && ma[1] == mb[1] && ma[2] == mb[2]
}
