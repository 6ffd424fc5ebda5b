package store

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// A snapshot is a store's records as JSON lines: a header, one line per
// record, and a last line that counts them, so a cut-off copy is told from
// a whole one.
//
//	{"format":"caddy-oauth-store","version":1,"created":"2025-06-01T10:00:00.000Z","backend":"file","consistency":"point-in-time"}
//	{"k":"at:3q2-…","v":"base64 of the value","ttl_ms":3599000}
//	{"k":"user:alice","set":[{"m":"rt:Zk9…","ttl_ms":86399000}]}
//	{"end":true,"records":2}
//
// ttl_ms is what was left of the record's life at created (absent: no
// expiry), so a restore knows what is left now. A key or member that is
// not valid UTF-8 is written base64-encoded as k64 or m64 instead.
const (
	SnapshotFormat  = "caddy-oauth-store"
	SnapshotVersion = 1
)

// maxSnapshotLine bounds one line of a snapshot: a set of many members is
// one line.
const maxSnapshotLine = 64 << 20

// SnapshotHeader is the first line of a snapshot.
type SnapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Created is when the snapshot began.
	Created time.Time `json:"created"`
	// Backend names the store it was taken from (file, memory, redis).
	Backend string `json:"backend,omitempty"`
	// Consistency is point-in-time or per-key.
	Consistency string `json:"consistency,omitempty"`
}

// snapshotLine is a record or the last line.
type snapshotLine struct {
	K   string  `json:"k,omitempty"`
	K64 []byte  `json:"k64,omitempty"`
	V   *string `json:"v,omitempty"` // base64

	TTLMs int64            `json:"ttl_ms,omitempty"`
	Set   []snapshotMember `json:"set,omitempty"`

	End     bool   `json:"end,omitempty"`
	Records *int64 `json:"records,omitempty"`
}

type snapshotMember struct {
	M     string `json:"m,omitempty"`
	M64   []byte `json:"m64,omitempty"`
	TTLMs int64  `json:"ttl_ms,omitempty"`
}

// SnapshotWriter writes a snapshot.
type SnapshotWriter struct {
	w       *bufio.Writer
	enc     *json.Encoder
	created time.Time
	n       int64
}

// NewSnapshotWriter writes the header of a snapshot begun at
// header.Created, filling in its format and version.
func NewSnapshotWriter(w io.Writer, header SnapshotHeader) (*SnapshotWriter, error) {
	header.Format, header.Version = SnapshotFormat, SnapshotVersion
	header.Created = header.Created.UTC().Truncate(time.Millisecond)
	sw := &SnapshotWriter{w: bufio.NewWriterSize(w, 64<<10), created: header.Created}
	sw.enc = json.NewEncoder(sw.w)
	sw.enc.SetEscapeHTML(false)
	return sw, sw.enc.Encode(header)
}

// Write writes rec, whose lifetimes were read at readAt (not before the
// header's Created).
func (sw *SnapshotWriter) Write(rec Record, readAt time.Time) error {
	shift := max(readAt.Sub(sw.created), 0)
	line := snapshotLine{}
	line.K, line.K64 = splitText(rec.Key)
	if rec.Set {
		line.Set = make([]snapshotMember, len(rec.Members))
		for i, m := range rec.Members {
			line.Set[i].M, line.Set[i].M64 = splitText(m.Name)
			line.Set[i].TTLMs = ttlMillis(m.TTL, shift)
		}
	} else {
		v := base64.StdEncoding.EncodeToString(rec.Value)
		line.V = &v
		line.TTLMs = ttlMillis(rec.TTL, shift)
	}
	sw.n++
	return sw.enc.Encode(line)
}

// Records is how many records were written.
func (sw *SnapshotWriter) Records() int64 { return sw.n }

// Close writes the last line and flushes; it does not close the writer
// underneath.
func (sw *SnapshotWriter) Close() error {
	n := sw.n
	if err := sw.enc.Encode(snapshotLine{End: true, Records: &n}); err != nil {
		return err
	}
	return sw.w.Flush()
}

func splitText(s string) (string, []byte) {
	if utf8.ValidString(s) {
		return s, nil
	}
	return "", []byte(s)
}

// ttlMillis is ttl, read shift after the snapshot began, as what was left
// at its beginning: whole milliseconds, rounded up so a short life never
// becomes none.
func ttlMillis(ttl, shift time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return int64((ttl + shift + time.Millisecond - 1) / time.Millisecond)
}

// SnapshotReader reads a snapshot, checking every line.
type SnapshotReader struct {
	Header SnapshotHeader
	// Expired counts the records (and members) whose life ended since the
	// snapshot was taken, which Next skips.
	Expired int64

	sc    *bufio.Scanner
	line  int
	n     int64
	ended bool
	now   func() time.Time
}

// ErrSnapshot marks a snapshot that is not one or is damaged.
var ErrSnapshot = errors.New("not a valid store snapshot")

func (sr *SnapshotReader) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrSnapshot, sr.line, fmt.Sprintf(format, args...))
}

// NewSnapshotReader reads and checks the header of a snapshot.
func NewSnapshotReader(r io.Reader) (*SnapshotReader, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxSnapshotLine)
	sr := &SnapshotReader{sc: sc, now: time.Now}
	b, err := sr.next()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: it is empty", ErrSnapshot)
	}
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return nil, sr.errorf("the header is not a JSON object")
	}
	if err := json.Unmarshal(b, &sr.Header); err != nil || sr.Header.Format != SnapshotFormat {
		return nil, sr.errorf("the header does not name the format %s", SnapshotFormat)
	}
	if sr.Header.Version != SnapshotVersion {
		return nil, sr.errorf("format version %d; this gateway reads version %d", sr.Header.Version, SnapshotVersion)
	}
	if sr.Header.Created.IsZero() {
		return nil, sr.errorf("the header has no created time")
	}
	return sr, nil
}

// Records is how many records were read, expired ones included.
func (sr *SnapshotReader) Records() int64 { return sr.n }

// next returns the next line, or io.EOF.
func (sr *SnapshotReader) next() ([]byte, error) {
	if !sr.sc.Scan() {
		if err := sr.sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrSnapshot, sr.line+1, maxSnapshotLine)
			}
			return nil, err
		}
		return nil, io.EOF
	}
	sr.line++
	return sr.sc.Bytes(), nil
}

// Next returns the next record with what is left of its lifetimes now,
// skipping what has expired since the snapshot was taken. After the last
// record it checks the closing line and returns io.EOF; a snapshot cut
// off before it is an error.
func (sr *SnapshotReader) Next() (Record, error) {
	for {
		if sr.ended {
			return Record{}, io.EOF
		}
		b, err := sr.next()
		if errors.Is(err, io.EOF) {
			return Record{}, fmt.Errorf("%w: it ends after %d records without its closing line (cut off?)", ErrSnapshot, sr.n)
		}
		if err != nil {
			return Record{}, err
		}
		var line snapshotLine
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&line); err != nil {
			return Record{}, sr.errorf("%v", err)
		}
		if line.End {
			if line.Records == nil || *line.Records != sr.n {
				return Record{}, sr.errorf("the closing line does not count the %d records read", sr.n)
			}
			for {
				b, err := sr.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return Record{}, err
				}
				if len(bytes.TrimSpace(b)) > 0 {
					return Record{}, sr.errorf("data after the closing line")
				}
			}
			sr.ended = true
			return Record{}, io.EOF
		}
		sr.n++
		rec, live, err := sr.record(&line)
		if err != nil {
			return Record{}, err
		}
		if live {
			return rec, nil
		}
	}
}

// record turns a line into a record, rebased to now; live is false when
// it has expired since.
func (sr *SnapshotReader) record(line *snapshotLine) (Record, bool, error) {
	key, err := joinText(line.K, line.K64)
	if err != nil {
		return Record{}, false, sr.errorf("key: %v", err)
	}
	if line.Records != nil || (line.Set != nil && line.V != nil) {
		return Record{}, false, sr.errorf("a record holds both a value and a set, or a count")
	}
	elapsed := sr.now().Sub(sr.Header.Created)
	left := func(ms int64) (time.Duration, bool, error) {
		if ms < 0 {
			return 0, false, sr.errorf("negative ttl_ms")
		}
		if ms == 0 {
			return 0, true, nil
		}
		ttl := time.Duration(ms)*time.Millisecond - elapsed
		return ttl, ttl > 0, nil
	}
	rec := Record{Key: key}
	switch {
	case line.Set != nil:
		rec.Set = true
		for _, m := range line.Set {
			name, err := joinText(m.M, m.M64)
			if err != nil {
				return Record{}, false, sr.errorf("member: %v", err)
			}
			ttl, live, err := left(m.TTLMs)
			if err != nil {
				return Record{}, false, err
			}
			if !live {
				sr.Expired++
				continue
			}
			rec.Members = append(rec.Members, Member{Name: name, TTL: ttl})
		}
		if len(line.Set) == 0 {
			return Record{}, false, sr.errorf("set %q has no members", key)
		}
		if len(rec.Members) == 0 {
			return Record{}, false, nil
		}
	case line.V != nil:
		ttl, live, err := left(line.TTLMs)
		if err != nil {
			return Record{}, false, err
		}
		if !live {
			sr.Expired++
			return Record{}, false, nil
		}
		v, err := base64.StdEncoding.DecodeString(*line.V)
		if err != nil {
			return Record{}, false, sr.errorf("value of %q is not base64", key)
		}
		rec.Value, rec.TTL = v, ttl
	default:
		return Record{}, false, sr.errorf("a record has neither a value nor a set")
	}
	if err := CheckRecord(&rec); err != nil {
		return Record{}, false, sr.errorf("%v", err)
	}
	return rec, true, nil
}

func joinText(s string, b []byte) (string, error) {
	switch {
	case s != "" && b != nil:
		return "", errors.New("given twice")
	case b != nil:
		return string(b), nil
	case s == "":
		return "", errors.New("missing")
	}
	return s, nil
}
