package store

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func writeSnapshot(t *testing.T, created time.Time, recs []Record, readAt time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	sw, err := NewSnapshotWriter(&buf, SnapshotHeader{Created: created, Backend: "file", Consistency: "point-in-time"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := sw.Write(r, readAt); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readSnapshot(data []byte, now time.Time) ([]Record, *SnapshotReader, error) {
	sr, err := NewSnapshotReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	sr.now = func() time.Time { return now }
	var out []Record
	for {
		r, err := sr.Next()
		if errors.Is(err, io.EOF) {
			return out, sr, nil
		}
		if err != nil {
			return out, sr, err
		}
		out = append(out, r)
	}
}

// TestSnapshotRoundTrip: values (binary and empty), keys that are not
// UTF-8, sets, and lifetimes come back as written, each lifetime less the
// time since the snapshot began; what expired since is skipped and
// counted.
func TestSnapshotRoundTrip(t *testing.T) {
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := []Record{
		{Key: "at:x", Value: []byte("grant"), TTL: time.Hour},
		{Key: "forever", Value: []byte{0, 255, '\n'}},
		{Key: "empty", Value: []byte{}},
		{Key: "bad\xffutf8", Value: []byte("v"), TTL: time.Minute},
		{Key: "user:alice", Set: true, Members: []Member{{Name: "rt:1", TTL: 2 * time.Hour}, {Name: "m\xfe", TTL: 0}, {Name: "short", TTL: time.Second}}},
		{Key: "soon", Value: []byte("v"), TTL: 10 * time.Second},
	}
	// Read 5s after the snapshot began (a Redis key read late): ttl_ms is
	// then what was left at created.
	data := writeSnapshot(t, created, recs, created.Add(5*time.Second))
	if first, _, _ := strings.Cut(string(data), "\n"); !strings.HasPrefix(first, `{"format":"caddy-oauth-store","version":1,"created":"2030-01-02T03:04:05Z"`) {
		t.Fatalf("header: %s", first)
	}
	got, sr, err := readSnapshot(data, created.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// soon (10s+5s) lives on, short (1s+5s) has expired.
	if len(got) != 6 || sr.Expired != 1 {
		t.Fatalf("read %d records, %d expired; want 6 and 1", len(got), sr.Expired)
	}
	if got[0].Key != "at:x" || string(got[0].Value) != "grant" || got[0].TTL != time.Hour-5*time.Second {
		t.Fatalf("at:x: %+v", got[0])
	}
	if !bytes.Equal(got[1].Value, []byte{0, 255, '\n'}) || got[1].TTL != 0 {
		t.Fatalf("forever: %+v", got[1])
	}
	if got[2].Key != "empty" || got[2].Value == nil || len(got[2].Value) != 0 {
		t.Fatalf("empty: %+v", got[2])
	}
	if got[3].Key != "bad\xffutf8" {
		t.Fatalf("non-UTF-8 key: %q", got[3].Key)
	}
	set := got[4]
	if !set.Set || set.Key != "user:alice" || len(set.Members) != 2 ||
		set.Members[0] != (Member{Name: "rt:1", TTL: 2*time.Hour - 5*time.Second}) || set.Members[1] != (Member{Name: "m\xfe"}) {
		t.Fatalf("set: %+v", set)
	}
	if got[5].TTL != 5*time.Second {
		t.Fatalf("soon: ttl %v, want 5s", got[5].TTL)
	}
}

// TestSnapshotRefusesDamage: a file that is not a snapshot, of another
// version, cut off or changed fails with ErrSnapshot and says where.
func TestSnapshotRefusesDamage(t *testing.T) {
	created := time.Now().Add(-time.Minute)
	good := string(writeSnapshot(t, created, []Record{
		{Key: "a", Value: []byte("1"), TTL: time.Hour},
		{Key: "b", Value: []byte("2")},
	}, created))
	lines := strings.SplitAfter(good, "\n")
	header, a, b, end := lines[0], lines[1], lines[2], lines[3]
	for name, data := range map[string]string{
		"empty":             "",
		"not JSON":          "hello\n",
		"other format":      `{"format":"something","version":1,"created":"2030-01-01T00:00:00Z"}` + "\n",
		"newer version":     strings.Replace(header, `"version":1`, `"version":2`, 1) + end,
		"no created":        `{"format":"caddy-oauth-store","version":1}` + "\n",
		"cut off":           header + a,
		"cut mid-line":      header + a + b[:5],
		"count wrong":       header + a + end,
		"after the end":     header + a + b + end + a,
		"bad base64":        header + `{"k":"x","v":"***"}` + "\n" + `{"end":true,"records":1}` + "\n",
		"unknown field":     header + `{"k":"x","v":"","extra":1}` + "\n" + `{"end":true,"records":1}` + "\n",
		"no key":            header + `{"v":""}` + "\n" + `{"end":true,"records":1}` + "\n",
		"NUL key":           header + `{"k":"\u0000format","v":""}` + "\n" + `{"end":true,"records":1}` + "\n",
		"value and set":     header + `{"k":"x","v":"","set":[{"m":"y"}]}` + "\n" + `{"end":true,"records":1}` + "\n",
		"neither":           header + `{"k":"x"}` + "\n" + `{"end":true,"records":1}` + "\n",
		"empty set":         header + `{"k":"x","set":[]}` + "\n" + `{"end":true,"records":1}` + "\n",
		"negative ttl":      header + `{"k":"x","v":"","ttl_ms":-5}` + "\n" + `{"end":true,"records":1}` + "\n",
		"blank line":        header + "\n" + a + b + end,
		"key given twice":   header + `{"k":"x","k64":"eA==","v":""}` + "\n" + `{"end":true,"records":1}` + "\n",
		"member w/o a name": header + `{"k":"x","set":[{"ttl_ms":5}]}` + "\n" + `{"end":true,"records":1}` + "\n",
	} {
		_, _, err := readSnapshot([]byte(data), time.Now())
		if !errors.Is(err, ErrSnapshot) {
			t.Errorf("%s: err = %v, want ErrSnapshot", name, err)
		}
	}
	if got, _, err := readSnapshot([]byte(good), time.Now()); err != nil || len(got) != 2 {
		t.Fatalf("the undamaged snapshot: %d records, %v", len(got), err)
	}
}
