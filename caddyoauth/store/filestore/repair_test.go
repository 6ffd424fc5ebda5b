package filestore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// resp is one record of buntdb's file.
func resp(parts ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(parts)) + "\r\n")
	for _, p := range parts {
		b = append(b, "$"+strconv.Itoa(len(p))+"\r\n"+p+"\r\n"...)
	}
	return b
}

// set is a record of a value as the store writes it (behind its expiry).
func set(key, value string) []byte { return resp("set", key, wrap(value, 0)) }

// storeFile is a file as the store writes it: the format marker, then
// records k0..k<n-1> holding v0..v<n-1>. offsets[i] is where record ki
// starts.
func storeFile(n int) (file []byte, offsets []int) {
	file = resp("set", formatKey, wrap(formatExpiry8, 0))
	for i := range n {
		offsets = append(offsets, len(file))
		file = append(file, set("k"+strconv.Itoa(i), "v"+strconv.Itoa(i))...)
	}
	return file, offsets
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "oauth.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantValues opens path and checks the value (or absence, "") of each key.
func wantValues(t *testing.T, path string, want map[string]string) {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	for k, w := range want {
		v, err := db.Get(context.Background(), k)
		switch {
		case w == "" && !errors.Is(err, store.ErrNotFound):
			t.Errorf("%s = %q, %v; want it gone", k, v, err)
		case w != "" && (err != nil || string(v) != w):
			t.Errorf("%s = %q, %v; want %q", k, v, err, w)
		}
	}
}

func TestScan(t *testing.T) {
	clean, off := storeFile(10)
	mid := off[5]
	recLen := off[6] - off[5]
	with := func(edit func(b []byte) []byte) []byte { return edit(bytes.Clone(clean)) }
	for _, tc := range []struct {
		name        string
		file        []byte
		records     int
		damageAt    []int64
		damageRecs  int
		partialTail int64 // -1: none
	}{
		{name: "clean", file: clean, records: 11, partialTail: -1},
		{name: "empty", file: nil, records: 0, partialTail: -1},
		{name: "trailing NULs", file: append(bytes.Clone(clean), make([]byte, 100)...), records: 11, partialTail: -1},
		{name: "partial tail", file: append(bytes.Clone(clean), set("k10", "v10")[:20]...), records: 11, partialTail: int64(len(clean))},
		{name: "partial tail then NULs", file: append(append(bytes.Clone(clean), set("k10", "v10")[:20]...), make([]byte, 4096)...), records: 11, partialTail: int64(len(clean))},
		{name: "partial header line", file: append(bytes.Clone(clean), "*3\r\n$3"...), records: 11, partialTail: int64(len(clean))},
		{name: "damaged header in the middle", file: with(func(b []byte) []byte {
			copy(b[mid:], "XXXXXXXX")
			return b
		}), records: 10, damageAt: []int64{int64(mid)}, damageRecs: 1, partialTail: -1},
		{name: "length prefix too long, past the end", file: with(func(b []byte) []byte {
			// "$3\r\nset\r\n$2\r\nk5" -> the key's length becomes 9999...
			i := mid + bytes.Index(b[mid:], []byte("$2\r\nk5"))
			return append(b[:i:i], append([]byte("$99999999\r\nk5"), b[i+6:]...)...)
		}), records: 10, damageAt: []int64{int64(mid)}, damageRecs: 1, partialTail: -1},
		{name: "length prefix too short", file: with(func(b []byte) []byte {
			i := mid + bytes.Index(b[mid:], []byte("$10\r\n"))
			b[i+2] = '9'
			return b
		}), records: 10, damageAt: []int64{int64(mid)}, damageRecs: 1, partialTail: -1},
		{name: "length prefix not a number", file: with(func(b []byte) []byte {
			i := mid + bytes.Index(b[mid:], []byte("$10\r\n"))
			b[i+1] = 'x'
			return b
		}), records: 10, damageAt: []int64{int64(mid)}, damageRecs: 1, partialTail: -1},
		{name: "two records damaged", file: with(func(b []byte) []byte {
			b[off[6]-2] = '!' // the end markers of k5's and k6's values
			b[off[7]-2] = '!'
			return b
		}), records: 9, damageAt: []int64{int64(mid)}, damageRecs: 2, partialTail: -1},
		{name: "a record's start overwritten with the one before", file: with(func(b []byte) []byte {
			for i := range recLen + 10 {
				b[mid+3+i] = '#'
			}
			return b
		}), records: 9, damageAt: []int64{int64(mid)}, damageRecs: 1, partialTail: -1},
		{name: "NULs between records", file: with(func(b []byte) []byte {
			for i := range recLen {
				b[mid+i] = 0
			}
			return b
		}), records: 10, damageAt: []int64{int64(mid)}, damageRecs: 0, partialTail: -1},
		{name: "empty command (buntdb panics)", file: append(append(bytes.Clone(clean[:mid]), resp("", "k")...), clean[mid:]...), records: 11, damageAt: []int64{int64(mid)}, damageRecs: 1, partialTail: -1},
		{name: "unknown command", file: append(append(bytes.Clone(clean[:mid]), resp("get", "k")...), clean[mid:]...), records: 11, damageAt: []int64{int64(mid)}, damageRecs: 1, partialTail: -1},
		{name: "garbage", file: []byte("this is not a store file\n*not\r\n$either\r\n"), records: 0, damageAt: []int64{0}, damageRecs: 1, partialTail: -1},
		{name: "damaged last record", file: with(func(b []byte) []byte {
			b[len(b)-1] = 'x'
			return b
		}), records: 10, damageAt: []int64{int64(off[9])}, damageRecs: 1, partialTail: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := scanFile(openRead(t, writeFile(t, tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Records != tc.records {
				t.Errorf("records = %d, want %d", rep.Records, tc.records)
			}
			var at []int64
			recs := 0
			for _, d := range rep.Damage {
				at = append(at, d.Offset)
				recs += d.Records
				if d.Reason == "" {
					t.Errorf("damage at %d has no reason", d.Offset)
				}
			}
			if !equal(at, tc.damageAt) || recs != tc.damageRecs {
				t.Errorf("damage = %+v, want at %v holding %d records", rep.Damage, tc.damageAt, tc.damageRecs)
			}
			switch {
			case tc.partialTail < 0 && rep.PartialTail != nil:
				t.Errorf("partial tail %+v, want none", rep.PartialTail)
			case tc.partialTail >= 0 && (rep.PartialTail == nil || rep.PartialTail.Offset != tc.partialTail || rep.PartialTail.Offset+rep.PartialTail.Length != int64(len(tc.file))):
				t.Errorf("partial tail %+v, want from %d to the end", rep.PartialTail, tc.partialTail)
			}
		})
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func openRead(t *testing.T, path string) (*os.File, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, path
}

// TestOpenCutsAPartialTail: a record an interrupted write cut short is cut
// off, everything before it kept, and the store takes writes again.
func TestOpenCutsAPartialTail(t *testing.T) {
	clean, _ := storeFile(3)
	for name, tail := range map[string][]byte{
		"cut short":           set("k3", "v3")[:15],
		"cut short then NULs": append(set("k3", "v3")[:15], make([]byte, 512)...),
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, append(bytes.Clone(clean), tail...))
			db, err := Open(path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if c := db.CutTail(); c == nil || c.Offset != int64(len(clean)) {
				t.Fatalf("CutTail = %+v, want from %d", c, len(clean))
			}
			if err := db.Put(context.Background(), "k4", []byte("v4"), 0); err != nil {
				t.Fatal(err)
			}
			db.Close()
			wantValues(t, path, map[string]string{"k0": "v0", "k2": "v2", "k3": "", "k4": "v4"})
		})
	}
}

// TestOpenRefusesDamage: a damaged record in the middle stops Open with
// the offset and the repair command, and leaves the file as it was;
// buntdb alone would have cut the file at a length prefix pointing past
// its end, losing every record after it.
func TestOpenRefusesDamage(t *testing.T) {
	clean, off := storeFile(10)
	b := bytes.Clone(clean)
	i := off[5] + bytes.Index(b[off[5]:], []byte("$2\r\nk5"))
	b = append(b[:i:i], append([]byte("$99999999\r\nk5"), b[i+6:]...)...)
	path := writeFile(t, b)

	_, err := Open(path)
	var damaged *DamagedError
	if !errors.As(err, &damaged) || !errors.Is(err, ErrDamaged) {
		t.Fatalf("Open: %v, want a *DamagedError", err)
	}
	msg := err.Error()
	for _, want := range []string{"byte offset " + strconv.Itoa(off[5]), "caddy oauth store repair " + path} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
		t.Fatal("a refused Open changed the file")
	}
	// The lock was let go: the file can be repaired now.
	if _, err := Check(path); err != nil {
		t.Fatalf("Check after a refused Open: %v", err)
	}

	// What buntdb makes of it on its own.
	cp := writeFile(t, b)
	bdb, err := buntdb.Open(cp)
	if err != nil {
		t.Fatalf("buntdb.Open: %v", err)
	}
	bdb.Close()
	if fi, _ := os.Stat(cp); fi.Size() != int64(off[5]) {
		t.Fatalf("buntdb left %d bytes; this test expects it to cut the file at %d", fi.Size(), off[5])
	}
}

// TestRepair: every whole record is kept, a damaged record whose key reads
// becomes a deletion of it (its earlier value does not come back), the
// original stays beside the file, and the gateway opens the result.
func TestRepair(t *testing.T) {
	file := resp("set", formatKey, wrap(formatExpiry8, 0))
	file = append(file, set("k1", "old")...) // k1's earlier value
	for i := range 5 {
		file = append(file, set("a"+strconv.Itoa(i), "x")...)
	}
	damagedAt := len(file)
	bad := set("k1", "new")
	bad[len(bad)-2] = '!' // the value's end marker
	file = append(file, bad...)
	file = append(file, set("a5", "x")...)
	garbageAt := len(file)
	file = append(file, "garbage that is no record\r\n"...)
	file = append(file, set("b0", "y")...)
	file = append(file, resp("del", "a0")...)
	tailAt := len(file)
	file = append(file, set("b1", "cut")[:12]...)
	path := writeFile(t, file)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	res, err := Repair(path, now)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Repaired || res.Kept != 10 || res.DeletedKeys != 1 || res.Dropped != 3 {
		t.Fatalf("result %+v, want 10 kept, 3 dropped (the damaged k1, the garbage, the cut record), 1 key deleted", res)
	}
	if len(res.Damage) != 2 || res.Damage[0].Offset != int64(damagedAt) || res.Damage[1].Offset != int64(garbageAt) ||
		res.PartialTail == nil || res.PartialTail.Offset != int64(tailAt) {
		t.Fatalf("damage %+v, tail %+v", res.Damage, res.PartialTail)
	}
	if want := path + ".damaged-20300102T030405Z"; res.MovedTo != want {
		t.Fatalf("original moved to %q, want %q", res.MovedTo, want)
	}
	if orig, err := os.ReadFile(res.MovedTo); err != nil || !bytes.Equal(orig, file) {
		t.Fatalf("the original is not kept as it was: %v", err)
	}
	rep, err := Check(path)
	if err != nil || rep.Damaged() || rep.PartialTail != nil || rep.Records != 11 {
		t.Fatalf("the repaired file: %+v, %v", rep, err)
	}
	wantValues(t, path, map[string]string{"k1": "", "a0": "", "a1": "x", "a4": "x", "b0": "y", "b1": ""})

	// A second repair in the same second keeps both originals.
	if again, err := Repair(path, now); err != nil || again.Repaired {
		t.Fatalf("repairing a sound file: %+v, %v", again, err)
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	res2, err := Repair(path, now)
	if err != nil || res2.MovedTo != res.MovedTo+"-2" {
		t.Fatalf("second repair: %+v, %v", res2, err)
	}
}

// TestRepairKeepsTheFilesMode: the repaired file has the original's mode
// and modification time (buntdb reads `ex` expiries relative to it).
func TestRepairKeepsTheFilesMode(t *testing.T) {
	clean, off := storeFile(4)
	b := bytes.Clone(clean)
	copy(b[off[2]:], "XX")
	path := writeFile(t, b)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if _, err := Repair(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("repaired file: mode %v, time %v; want 0640, %v", fi.Mode().Perm(), fi.ModTime(), mtime)
	}
}

// FuzzScan: no input panics the scan, buntdb loads a file the scan finds
// sound, and what Repair writes scans sound with every record kept.
func FuzzScan(f *testing.F) {
	clean, _ := storeFile(3)
	f.Add(clean)
	f.Add(append(bytes.Clone(clean), "*3\r\n$3\r\nse"...))
	f.Add([]byte("*2\r\n$3\r\ndel\r\n$1\r\nk\r\n\x00\x00*1\r\n$7\r\nflushdb\r\n"))
	f.Add([]byte("*5\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nex\r\n$2\r\n10\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		src := bytes.NewReader(b)
		s := newScanner(src, int64(len(b)))
		rep, err := s.scan("fuzz")
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Damaged() && rep.PartialTail == nil {
			bdb, err := buntdb.Open(":memory:")
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			if err := bdb.Load(bytes.NewReader(b)); err != nil {
				t.Fatalf("buntdb refuses a file the scan found sound: %v", err)
			}
		}
		res := &RepairResult{Report: rep, Kept: rep.Records}
		var out bytes.Buffer
		if err := writeRepaired(&out, src, s, res); err != nil {
			t.Fatalf("writeRepaired: %v", err)
		}
		again, err := newScanner(bytes.NewReader(out.Bytes()), int64(out.Len())).scan("repaired")
		if err != nil || again.Damaged() || again.PartialTail != nil || again.Records != res.Kept+res.DeletedKeys {
			t.Fatalf("after repair: %+v, %v; want %d records", again, err, res.Kept+res.DeletedKeys)
		}
	})
}
