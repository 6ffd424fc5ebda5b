package filestore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// The file is buntdb's append-only log: a sequence of RESP arrays of bulk
// strings, `*3\r\n$3\r\nset\r\n$<n>\r\n<key>\r\n$<m>\r\n<value>\r\n` (with
// `ex <seconds>` or `ae <unix time>` as two more parts when buntdb keeps the
// expiry), `*2\r\n$3\r\ndel\r\n$<n>\r\n<key>\r\n` and `*1\r\n$7\r\nflushdb\r\n`;
// buntdb skips NUL bytes between records. scanFile reads it as buntdb's
// readLoad does, but does not stop at the first unreadable byte: it finds
// where whole records start again, so that a damaged stretch in the middle
// is told apart from a record cut short at the end, and everything after
// the damage can be kept.
//
// It refuses a few things readLoad accepts, none of which buntdb writes: an
// empty array (readLoad skips it without counting its bytes), a command
// that only starts like set or del, or is shorter than three bytes
// (readLoad panics), and NUL bytes followed by more records (readLoad does
// not count them either, so it would append over the file's last bytes).
// A length prefix running past the end of the file is damage when whole
// records follow it, where readLoad would cut them all off.

// Damage is a stretch of the file that holds no whole record.
type Damage struct {
	// Offset is the byte offset where the stretch starts.
	Offset int64 `json:"offset"`
	// Length is its length in bytes.
	Length int64 `json:"length"`
	// Records is how many records it held, as far as their starts can be
	// told.
	Records int `json:"records"`
	// Reason says what is wrong with its first record.
	Reason string `json:"reason"`

	key    string // the first record's key, when that much was readable
	hasKey bool
}

// Tail is a record cut short by the end of the file, as an interrupted
// write leaves it (possibly followed by NUL bytes).
type Tail struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// Report is what a scan of a store file found.
type Report struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Records is the number of whole records.
	Records int `json:"records"`
	// Damage lists the unreadable stretches, in file order.
	Damage []Damage `json:"damage,omitempty"`
	// PartialTail is a record cut short at the end; the gateway cuts it off
	// when it opens the file.
	PartialTail *Tail `json:"partial_tail,omitempty"`
}

// Damaged reports whether the file has a damaged stretch (a record cut
// short at the end is not one).
func (r *Report) Damaged() bool { return len(r.Damage) > 0 }

// DamagedError is why Open refuses a damaged file.
type DamagedError struct {
	Path   string
	Report *Report
}

// ErrDamaged matches a *DamagedError with errors.Is.
var ErrDamaged = errors.New("store file damaged")

// Is reports target == ErrDamaged.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

func (e *DamagedError) Error() string {
	d := e.Report.Damage[0]
	more := ""
	if n := len(e.Report.Damage); n > 1 {
		more = fmt.Sprintf(", and %d more damaged stretches", n-1)
	}
	return fmt.Sprintf("damaged record at byte offset %d (%d bytes unreadable: %s%s; %d whole records readable); "+
		"the gateway does not start on a damaged store: run `caddy oauth store repair %s` to keep every readable record (the damaged file is kept beside it)",
		d.Offset, d.Length, d.Reason, more, e.Report.Records, shellQuote(e.Path))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%,=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

const (
	scanWindow = 1 << 20
	maxHeader  = 24 // "$" + up to 19 digits + "\r\n"
	maxParts   = 64
	maxKeyKept = 4096 // longer keys of damaged records are not kept
)

// recordError says why no whole record starts at an offset; eof: the file
// ended before the record did.
type recordError struct {
	eof    bool
	reason string
	key    string
	hasKey bool
}

// scanner reads a file through a window, so that files far larger than
// memory scan in constant space.
type scanner struct {
	r     io.ReaderAt
	size  int64 // of the file
	limit int64 // reads stop here: size, or size less trailing NULs
	buf   []byte
	win   []byte
	woff  int64
	err   error // the first read error
}

func newScanner(r io.ReaderAt, size int64) *scanner {
	return &scanner{r: r, size: size, limit: size}
}

// at returns up to n bytes at off (fewer at the limit).
func (s *scanner) at(off int64, n int) []byte {
	if off >= s.limit {
		return nil
	}
	if rem := s.limit - off; int64(n) > rem {
		n = int(rem)
	}
	if off < s.woff || off+int64(n) > s.woff+int64(len(s.win)) {
		m := max(n, scanWindow)
		if rem := s.size - off; int64(m) > rem {
			m = int(rem)
		}
		if cap(s.buf) < m {
			s.buf = make([]byte, m)
		}
		k, err := s.r.ReadAt(s.buf[:m], off)
		if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
			s.err = err
		}
		s.win, s.woff = s.buf[:k], off
		n = min(n, k)
	}
	return s.win[off-s.woff : off-s.woff+int64(n)]
}

// header reads a "*<n>\r\n" or "$<n>\r\n" line at off, as readLoad does,
// and returns n and the offset after the line.
func (s *scanner) header(off int64, kind byte) (int64, int64, *recordError) {
	b := s.at(off, maxHeader)
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if off+int64(len(b)) >= s.limit {
			return 0, 0, &recordError{eof: true, reason: "the file ends inside a record"}
		}
		return 0, 0, &recordError{reason: "a length prefix is not a number"}
	}
	line := b[:i+1]
	if line[0] != kind {
		if kind == '*' {
			return 0, 0, &recordError{reason: "no record starts here"}
		}
		return 0, 0, &recordError{reason: "a part of a record has no length prefix"}
	}
	var n int64
	if len(line) == 4 && line[2] == '\r' {
		if line[1] < '0' || line[1] > '9' {
			return 0, 0, &recordError{reason: "a length prefix is not a number"}
		}
		n = int64(line[1] - '0')
	} else {
		if len(line) < 5 || line[len(line)-2] != '\r' {
			return 0, 0, &recordError{reason: "a length prefix is not a number"}
		}
		for _, c := range line[1 : len(line)-2] {
			if c < '0' || c > '9' {
				return 0, 0, &recordError{reason: "a length prefix is not a number"}
			}
			n = n*10 + int64(c-'0')
		}
	}
	return n, off + int64(len(line)), nil
}

// record reads the record at off and returns the offset after it.
func (s *scanner) record(off int64) (int64, *recordError) {
	n, p, rerr := s.header(off, '*')
	if rerr != nil {
		return 0, rerr
	}
	if n < 1 || n > maxParts {
		return 0, &recordError{reason: "a record has no or too many parts"}
	}
	var cmd, arg string
	keyOff, keyLen := int64(-1), int64(0)
	fail := func(eof bool, reason string) (int64, *recordError) {
		e := &recordError{eof: eof, reason: reason}
		// The key of a set or del is what a repair can still act on.
		if (cmd == "set" || cmd == "del") && keyOff >= 0 && keyLen <= maxKeyKept {
			e.key, e.hasKey = string(s.at(keyOff, int(keyLen))), true
		}
		return 0, e
	}
	for i := range n {
		l, q, rerr := s.header(p, '$')
		if rerr != nil {
			return fail(rerr.eof, rerr.reason)
		}
		if l > s.limit-q-2 {
			return fail(true, "a length runs past the end of the file")
		}
		if end := s.at(q+l, 2); len(end) < 2 || end[0] != '\r' || end[1] != '\n' {
			return fail(false, "a part does not end where its length says")
		}
		switch i {
		case 0:
			cmd = command(s.at(q, int(min(l, 8))))
		case 1:
			keyOff, keyLen = q, l
		case 3:
			if v := s.at(q, int(min(l, 3))); len(v) == 2 && (v[0]|0x20) == 'e' && (v[1]|0x20) == 'x' {
				arg = "ex"
			} else if len(v) == 2 && (v[0]|0x20) == 'a' && (v[1]|0x20) == 'e' {
				arg = "ae"
			}
		case 4:
			if l > 20 {
				return fail(false, "an expiry is not a number")
			}
			if _, err := strconv.ParseInt(string(s.at(q, int(l))), 10, 64); err != nil {
				return fail(false, "an expiry is not a number")
			}
		}
		p = q + l + 2
	}
	switch {
	case cmd == "set" && (n == 3 || n == 5 && arg != ""):
	case cmd == "del" && n == 2:
	case cmd == "flushdb":
	default:
		cmd = "" // not a record a repair can act on
		return fail(false, "not a set, del or flushdb command")
	}
	return p, nil
}

// command returns the command name b, in lower case, when it is one buntdb
// writes; "" otherwise.
func command(b []byte) string {
	for _, c := range []string{"set", "del", "flushdb"} {
		if len(b) == len(c) && bytes.EqualFold(b, []byte(c)) {
			return c
		}
	}
	return ""
}

// resync returns the offset of the first whole record after off: a '*'
// that follows a line end or a NUL byte and starts a readable record; the
// limit when there is none.
func (s *scanner) resync(off int64) int64 {
	for p := off; p < s.limit; {
		b := s.at(p, scanWindow)
		i := bytes.IndexByte(b, '*')
		if i < 0 {
			p += int64(len(b))
			continue
		}
		c := p + int64(i)
		if prev := s.at(c-1, 1); len(prev) == 1 && (prev[0] == '\n' || prev[0] == 0) {
			if _, rerr := s.record(c); rerr == nil {
				return c
			}
		}
		p = c + 1
	}
	return s.limit
}

// recordStarts counts the records that seem to start in [from, to): the
// first, and each line end followed by an array header.
func (s *scanner) recordStarts(from, to int64) int {
	n := 1
	for p := from + 1; p < to; {
		b := s.at(p, int(min(scanWindow, to-p)))
		i := bytes.Index(b, []byte("\n*"))
		if i < 0 {
			if len(b) <= 1 {
				break
			}
			p += int64(len(b)) - 1 // a "\n*" may straddle windows
			continue
		}
		c := p + int64(i) + 1
		if c < to {
			if h, _, rerr := s.header(c, '*'); rerr == nil && h >= 1 && h <= maxParts {
				n++
			}
		}
		p = c
	}
	return n
}

// trailingZeros returns the offset where the file's final run of NUL bytes
// starts (its size when it has none).
func (s *scanner) trailingZeros() int64 {
	end := s.size
	for end > 0 {
		start := max(0, end-scanWindow)
		b := s.at(start, int(end-start))
		i := len(b) - 1
		for i >= 0 && b[i] == 0 {
			i--
		}
		if i >= 0 {
			return start + int64(i) + 1
		}
		end = start
	}
	return 0
}

// scan reads the whole file.
func (s *scanner) scan(path string) (*Report, error) {
	rep := &Report{Path: path, Size: s.size}
	zeros := s.trailingZeros()
	for p := int64(0); p < s.limit; {
		if b := s.at(p, 1); len(b) == 1 && b[0] == 0 {
			q := p
			for q < s.limit {
				b := s.at(q, scanWindow)
				i := 0
				for i < len(b) && b[i] == 0 {
					i++
				}
				q += int64(i)
				if i < len(b) {
					break
				}
			}
			if q < zeros {
				rep.Damage = append(rep.Damage, Damage{Offset: p, Length: q - p, Reason: "NUL bytes between records (lost writes)"})
			}
			p = q
			continue
		}
		end, rerr := s.record(p)
		if rerr == nil {
			rep.Records++
			p = end
			continue
		}
		next := s.resync(p + 1)
		if next == s.limit && s.cutShort(p, rerr, zeros) {
			rep.PartialTail = &Tail{Offset: p, Length: s.size - p}
			break
		}
		rep.Damage = append(rep.Damage, Damage{Offset: p, Length: next - p, Records: s.recordStarts(p, next),
			Reason: rerr.reason, key: rerr.key, hasKey: rerr.hasKey})
		p = next
	}
	if s.err != nil {
		return nil, s.err
	}
	return rep, nil
}

// cutShort reports whether the unreadable record at off, after which no
// record starts, is one an interrupted write left: the file (less the NUL
// bytes a crash can leave past its last write) ends inside it.
func (s *scanner) cutShort(off int64, rerr *recordError, zeros int64) bool {
	if rerr.eof {
		return true
	}
	if zeros <= off || zeros == s.limit {
		return false
	}
	limit := s.limit
	s.limit = zeros
	_, rerr = s.record(off)
	s.limit = limit
	return rerr != nil && rerr.eof
}

// scanFile scans the store file f.
func scanFile(f *os.File, path string) (*Report, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return newScanner(f, fi.Size()).scan(path)
}
