package authz

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"
)

func codecRecords() map[string]*record {
	now := time.Now()
	full := &record{ClientID: "app", UserID: "user-1", Scope: "read write", RedirectURI: "https://app.example.com/cb",
		Family: newFamily(), Challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", ChallengeMethod: "S256",
		IssuedAt: now.UnixNano(), ExpiresAt: now.Add(time.Hour).UnixNano(), AccessTTL: int64(time.Hour),
		Pair: refreshKey(randomToken()), RotatedAt: now.Add(time.Minute).UnixNano(),
		JTI: "jti-1", Issuer: "https://auth.example.com", Audience: "api",
		Parent: refreshKey(randomToken()), SuccessorUsed: true, Grant: grantRefresh,
		Resource: "https://api.example.com https://mcp.example.com/mcp",
		Cnf:      &Confirmation{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", X5T: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}
	nonCanonical := accessKey(randomToken())
	nonCanonical = nonCanonical[:len(nonCanonical)-1] + "B" // trailing bits set: not a digest's encoding
	return map[string]*record{
		"empty":             {},
		"full":              full,
		"access pair":       {ClientID: "app", IssuedAt: 1, Pair: accessKey(randomToken())},
		"other pair":        {ClientID: "app", Pair: "code:xyz"},
		"short pair":        {Pair: "at:abc"},
		"non-canonical":     {Pair: nonCanonical},
		"access parent":     {Parent: accessKey(randomToken())},
		"other parent":      {Parent: "rt:x", Pair: "rt:y"},
		"successor used":    {ClientID: "app", SuccessorUsed: true},
		"never expires":     {ClientID: "c", IssuedAt: now.UnixNano()},
		"extremes":          {IssuedAt: math.MinInt64, ExpiresAt: math.MaxInt64, RotatedAt: -1, AccessTTL: math.MinInt64},
		"expiry before iat": {IssuedAt: 100, ExpiresAt: 5},
		"non-ASCII":         {ClientID: "é\x00\xff", Scope: "{"},
		"resource only":     {Resource: "https://api.example.com"},
		"DPoP-bound":        {ClientID: "app", Cnf: &Confirmation{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}},
		"certificate-bound": {ClientID: "app", Cnf: &Confirmation{X5T: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}},
	}
}

// TestRecordEncodingRoundTrip: every record decodes to itself, in the
// binary form.
func TestRecordEncodingRoundTrip(t *testing.T) {
	for name, r := range codecRecords() {
		b := r.encode()
		if b[0] != recordV1 {
			t.Fatalf("%s: encoding starts with %#x", name, b[0])
		}
		got, err := decodeRecord(b)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("%s: decoded %+v, %v; want %+v", name, got, err, r)
		}
	}
}

// TestRecordPairStoredAsDigest: an access or refresh key in Pair, and a
// refresh key in Parent, costs its 32-byte digest, not its 46 characters
// (Parent's flag may take one more byte of flags).
func TestRecordPairStoredAsDigest(t *testing.T) {
	base := &record{ClientID: "app", IssuedAt: time.Now().UnixNano()}
	for _, pair := range []string{accessKey(randomToken()), refreshKey(randomToken())} {
		with := *base
		with.Pair = pair
		if d := len(with.encode()) - len(base.encode()); d != digestLen {
			t.Fatalf("Pair %.3s... adds %d bytes, want %d", pair, d, digestLen)
		}
	}
	with := *base
	with.Parent = refreshKey(randomToken())
	if d := len(with.encode()) - len(base.encode()); d > digestLen+1 {
		t.Fatalf("Parent adds %d bytes, want at most %d", d, digestLen+1)
	}
}

// TestRecordDecodesLegacyJSON: records written as JSON before the binary
// format still decode, and a store holding them still works: the access
// token validates and the refresh token refreshes.
func TestRecordDecodesLegacyJSON(t *testing.T) {
	legacy := `{"cid":"app","uid":"user-1","scp":"read","fam":"f1","iat":1700000000000000000,"exp":1700003600000000000,"pair":"rt:x","rot":1700000000500000000}`
	want := &record{ClientID: "app", UserID: "user-1", Scope: "read", Family: "f1", IssuedAt: 1700000000000000000,
		ExpiresAt: 1700003600000000000, Pair: "rt:x", RotatedAt: 1700000000500000000}
	got, err := decodeRecord([]byte(legacy))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("legacy JSON decoded to %+v, %v", got, err)
	}

	s, _ := newTestService(t, nil)
	ctx := context.Background()
	now := time.Now()
	access, refresh := randomToken(), randomToken()
	at := `{"cid":"app","uid":"user-1","scp":"read","fam":"f2","iat":` + itoa(now.UnixNano()) +
		`,"exp":` + itoa(now.Add(time.Hour).UnixNano()) + `,"pair":"` + refreshKey(refresh) + `"}`
	rt := `{"cid":"app","uid":"user-1","scp":"read","fam":"f2","iat":` + itoa(now.UnixNano()) +
		`,"exp":` + itoa(now.Add(24*time.Hour).UnixNano()) + `,"pair":"` + accessKey(access) + `"}`
	for k, v := range map[string]string{accessKey(access): at, refreshKey(refresh): rt} {
		if err := s.store.Put(ctx, k, []byte(v), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	id, err := s.Validate(ctx, access)
	if err != nil || id.UserID != "user-1" || id.Scope != "read" {
		t.Fatalf("Validate of a legacy record: %+v, %v", id, err)
	}
	if r := refreshGrant(t, s, refresh, "", as("app")); r.status != 200 || !valid(s, r.str("access_token")) {
		t.Fatalf("refresh of a legacy record: %d %s", r.status, r.body)
	}
	if valid(s, access) {
		t.Fatal("the legacy access token survived its refresh token's rotation")
	}
}

// TestRecordWrittenBeforeConfirmationsDecodes: a record as this format
// wrote it before tokens could be bound decodes to a bearer token's, and
// a record without a binding is still written byte for byte as then.
func TestRecordWrittenBeforeConfirmationsDecodes(t *testing.T) {
	const before = "01978bc0010361707006757365722d3104726561640466616d318080d0e2c6bfce972f8080c58bc6d1010472743a78041768747470733a2f2f6170692e6578616d706c652e636f6d"
	want := &record{ClientID: "app", UserID: "user-1", Scope: "read", Family: "fam1", IssuedAt: 1700000000000000000,
		ExpiresAt: 1700003600000000000, Pair: "rt:x", Grant: grantRefresh, Resource: "https://api.example.com"}
	b, _ := hex.DecodeString(before)
	got, err := decodeRecord(b)
	if err != nil || !reflect.DeepEqual(got, want) || got.Cnf != nil {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, want)
	}
	if enc := hex.EncodeToString(want.encode()); enc != before {
		t.Fatalf("an unbound record is now written as %s", enc)
	}
	// An empty confirmation binds nothing: read as none, as written.
	empty := append(binary.AppendUvarint([]byte{recordV1}, fieldCnfJKT), 0)
	if r, err := decodeRecord(empty); err != nil || r.Cnf != nil {
		t.Fatalf("an empty confirmation decoded to %+v, %v", r, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestRecordDecodeRejectsMalformed: a damaged binary record is an error,
// never a panic or a record made up of part of it.
func TestRecordDecodeRejectsMalformed(t *testing.T) {
	good := codecRecords()["full"].encode()
	cases := map[string][]byte{
		"version only":     {recordV1},
		"unknown flag":     {recordV1, 0x80, 0x80, 0x80, 0x01},
		"two pair kinds":   append([]byte{recordV1}, binary.AppendUvarint(nil, fieldPairAccess|fieldPairRefresh)...),
		"two parent kinds": append([]byte{recordV1}, binary.AppendUvarint(nil, fieldParent|fieldParentRefresh)...),
		"trailing byte":    append(append([]byte{}, good...), 0),
		"not JSON":         []byte("not a record"),
		"empty":            {},
	}
	for i := 1; i < len(good); i++ {
		cases["truncated at "+strconv.Itoa(i)] = good[:i]
	}
	for name, b := range cases {
		if r, err := decodeRecord(b); err == nil {
			t.Errorf("%s: decoded to %+v", name, r)
		}
	}
}
