package authz

import (
	"testing"
	"time"
)

// benchRecords are an access and a refresh token record as saveTokens
// writes them: what Validate and a refresh decode.
func benchRecords() []*record {
	now := time.Now()
	fam := newFamily()
	at := &record{ClientID: "bench", UserID: "user-1234", Scope: "read write", Family: fam,
		IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, time.Hour), Pair: refreshKey(randomToken())}
	rt := &record{ClientID: "bench", UserID: "user-1234", Scope: "read write", Family: fam,
		IssuedAt: now.UnixNano(), ExpiresAt: expiresAt(now, 720*time.Hour), Pair: accessKey(randomToken())}
	return []*record{at, rt}
}

func BenchmarkRecordEncode(b *testing.B) {
	recs := benchRecords()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = recs[i&1].encode()
	}
}

// BenchmarkRecordDecode is the decode Validate does on every request.
func BenchmarkRecordDecode(b *testing.B) {
	var raws [][]byte
	for _, r := range benchRecords() {
		raws = append(raws, r.encode())
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := decodeRecord(raws[i&1]); err != nil {
			b.Fatal(err)
		}
	}
}
