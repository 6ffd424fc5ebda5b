package caddyoauth

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

func TestStripHeaders(t *testing.T) {
	names := []string{normHeader(DefaultUserHeader), normHeader("X-Tenant")}
	// Keys as they arrive: canonical, raw (HTTP/2 lower case, or set
	// directly in the map), and with underscores.
	h := http.Header{
		"X-User-Id":     {"a", "b"},
		"x-user-id":     {"c"},
		"X_User_ID":     {"d"},
		"X_USER-id":     {"e"},
		"X-Tenant":      {"f"},
		"x_tenant":      {"g"},
		"X-User-Idx":    {"keep"},
		"X-Userid":      {"keep"},
		"Authorization": {"keep"},
		"A":             {"keep"},
	}
	stripIdentity(&http.Request{Header: h}, names, false)
	var left []string
	for k := range h {
		left = append(left, k)
	}
	slices.Sort(left)
	want := []string{"A", "Authorization", "X-User-Idx", "X-Userid"}
	if !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
}

func TestNormHeader(t *testing.T) {
	for in, want := range map[string]string{"X-User-ID": "x-user-id", "x_user_id": "x-user-id", "X_USER-Id": "x-user-id"} {
		if got := normHeader(in); got != want {
			t.Errorf("normHeader(%q) = %q, want %q", in, got, want)
		}
	}
}

// identityNames are the folded identity names the stripping tests use.
var identityNames = []string{normHeader(DefaultUserHeader), normHeader(DefaultClientHeader), normHeader(DefaultScopeHeader), normHeader("X_Tenant")}

// lateTrailers stands for net/http's request body: at EOF it adds the
// trailers that followed the body to the request's declared map,
// declared or not.
type lateTrailers struct {
	io.Reader
	trailer, late http.Header
}

func (b *lateTrailers) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		maps.Copy(b.trailer, b.late)
	}
	return n, err
}

func (b *lateTrailers) Close() error { return nil }

func TestStripIdentity(t *testing.T) {
	for name, tc := range map[string]struct {
		header, wantHeader http.Header
		authz              bool
	}{
		"connection names identity headers": {
			header:     http.Header{"Connection": {"keep-alive, X-User-ID", "x_oauth_scope ,close", "X-Tenant"}, "X-Hop": {"1"}},
			wantHeader: http.Header{"Connection": {"keep-alive", "close"}, "X-Hop": {"1"}},
		},
		"spaces and empty elements": {
			header:     http.Header{"Connection": {" ,\t X-User-ID \t, ,X-Hop,"}},
			wantHeader: http.Header{"Connection": {"X-Hop"}},
		},
		"connection naming only identity headers goes": {
			header:     http.Header{"connection": {"X-OAUTH-CLIENT-ID"}, "Connection": {"x-user-id"}},
			wantHeader: http.Header{},
		},
		"common connection untouched": {
			header:     http.Header{"Connection": {"keep-alive"}, "Accept": {"*/*"}},
			wantHeader: http.Header{"Connection": {"keep-alive"}, "Accept": {"*/*"}},
		},
		"trailer header": {
			header:     http.Header{"Trailer": {"X-User-ID, X-Other", "Authorization"}},
			wantHeader: http.Header{"Trailer": {"X-Other"}},
			authz:      true,
		},
		"authorization stays without authz": {
			header:     http.Header{"Trailer": {"Authorization, X_User_ID"}, "Connection": {"Authorization"}},
			wantHeader: http.Header{"Trailer": {"Authorization"}, "Connection": {"Authorization"}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			stripIdentity(&http.Request{Header: tc.header}, identityNames, tc.authz)
			if fmt.Sprint(tc.header) != fmt.Sprint(tc.wantHeader) {
				t.Fatalf("got %v, want %v", tc.header, tc.wantHeader)
			}
		})
	}
}

// TestStripIdentityTrailers: identity trailers are dropped when declared
// and again when the body's end adds them, undeclared ones included.
func TestStripIdentityTrailers(t *testing.T) {
	declared := http.Header{"X-User-Id": nil, "X-Other": nil, "Authorization": nil}
	late := http.Header{"X-User-Id": {"admin"}, "X_oauth_scope": {"admin"}, "X-Other": {"1"}, "Authorization": {"Bearer x"}}
	r := &http.Request{Header: http.Header{}, Trailer: declared}
	r.Body = &lateTrailers{Reader: strings.NewReader("body"), trailer: declared, late: late}
	// oauth_server, then oauth_protect: one guard, with authz.
	stripIdentity(r, identityNames, false)
	stripIdentity(r, identityNames, true)
	if g, ok := r.Body.(*trailerGuard); !ok || !g.authz {
		t.Fatalf("body %T", r.Body)
	} else if _, twice := g.ReadCloser.(*trailerGuard); twice {
		t.Fatal("the body is guarded twice")
	}
	if fmt.Sprint(r.Trailer) != "map[X-Other:[]]" {
		t.Fatalf("declared trailers %v", r.Trailer)
	}
	if b, err := io.ReadAll(r.Body); err != nil || string(b) != "body" {
		t.Fatalf("body %q %v", b, err)
	}
	if fmt.Sprint(r.Trailer) != "map[X-Other:[1]]" {
		t.Fatalf("trailers at EOF %v", r.Trailer)
	}
}

// TestStripIdentityAllocations: the common request costs no allocation.
func TestStripIdentityAllocations(t *testing.T) {
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"curl/8"}, "Connection": {"keep-alive"},
		"Authorization": {"Bearer x"}, "Accept-Encoding": {"gzip"}, "Content-Type": {"application/json"}}
	r := &http.Request{Header: h, Body: http.NoBody}
	if n := testing.AllocsPerRun(100, func() { stripIdentity(r, identityNames, true) }); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

// parseFields reads "name:value" lines into a header, keys as written.
func parseFields(s string) http.Header {
	h := http.Header{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k != "" {
			h[k] = append(h[k], v)
		}
	}
	return h
}

// listElems returns the non-empty trimmed elements of list values that
// keep does not reject.
func listElems(vv []string, keep func(string) bool) []string {
	var out []string
	for _, v := range vv {
		for _, e := range strings.Split(v, ",") {
			if e = textproto.TrimString(e); e != "" && keep(e) {
				out = append(out, e)
			}
		}
	}
	return out
}

// FuzzStripIdentity: whatever the header fields, Connection and Trailer
// lists, declared trailers and trailers arriving at the body's end, no
// identity name (folded) survives stripIdentity in a header key, a
// Connection or Trailer element or a trailer key, nor Authorization in a
// trailer with authz; everything else is kept as it was.
func FuzzStripIdentity(f *testing.F) {
	f.Add("Connection:keep-alive, X-User-ID\nX-User-ID:admin\nAccept:*/*", "X-Other", "X-Other:1\nX-User-ID:admin", "", true)
	f.Add("connection: ,X_OAUTH_SCOPE,,close\nCONNECTION:x-tenant\nX-Hop:1", "", "", "X-Custom-User", false)
	f.Add("Trailer:Authorization, x_user_id\nX_User_Id:a", "Authorization\nX-User-Id", "Authorization:Bearer x\nx-oauth-client-id:c", "", true)
	f.Add("Connection:\tX-Custom-User \nX-Custom-User:forged", "x_custom_user", "X-Custom-User:forged", "x_custom_user", false)
	f.Fuzz(func(t *testing.T, headers, declared, late, extra string, authz bool) {
		names := identityNames
		if validHeaderName(extra) {
			names = append(slices.Clone(identityNames), normHeader(extra))
		}
		drop := func(n string) bool { return dropped(textproto.TrimString(n), names, authz) }
		isList := func(k string) bool { return foldsTo(k, "connection") || foldsTo(k, "trailer") }

		h := parseFields(headers)
		orig := h.Clone()
		r := &http.Request{Header: h, Body: http.NoBody}
		var lateT http.Header
		if declared != "" {
			r.Trailer = http.Header{}
			for _, k := range strings.Split(declared, "\n") {
				r.Trailer[k] = nil
			}
			lateT = parseFields(late)
			r.Body = &lateTrailers{Reader: strings.NewReader("x"), trailer: r.Trailer, late: lateT}
		}
		stripIdentity(r, names, authz)
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Fatal(err)
		}

		for k, vv := range h {
			if isIdentity(k, names) {
				t.Fatalf("header %q kept", k)
			}
			if isList(k) {
				if e := listElems(vv, drop); len(e) > 0 {
					t.Fatalf("%s still lists %q", k, e)
				}
			}
		}
		for k, vv := range orig {
			switch {
			case isIdentity(k, names):
			case isList(k):
				keep := func(e string) bool { return !drop(e) }
				if want, got := listElems(vv, keep), listElems(h[k], keep); !slices.Equal(want, got) {
					t.Fatalf("%s elements %q became %q", k, want, got)
				}
			case !slices.Equal(h[k], vv):
				t.Fatalf("header %q changed: %q to %q", k, vv, h[k])
			}
		}
		for k := range r.Trailer {
			if drop(k) {
				t.Fatalf("trailer %q kept", k)
			}
		}
		for k, vv := range lateT {
			if !drop(k) && !slices.Equal(r.Trailer[k], vv) {
				t.Fatalf("trailer %q lost", k)
			}
		}
	})
}
