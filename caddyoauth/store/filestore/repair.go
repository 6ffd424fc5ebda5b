package filestore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Check reads the store file at path and reports what is damaged. It takes
// the store's lock, so it fails with a *LockedError while a gateway has the
// file open.
func Check(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lock, err := lockStore(path)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	return scanFile(f, path)
}

// RepairResult is what Repair did.
type RepairResult struct {
	*Report
	// Repaired is false when there was nothing to repair; the file is then
	// left as it was.
	Repaired bool `json:"repaired"`
	// Kept is the number of whole records written to the repaired file.
	Kept int `json:"kept"`
	// Dropped is the number of records left out: those in damaged
	// stretches, and a record cut short at the end.
	Dropped int `json:"dropped"`
	// DroppedBytes is the length of what was left out.
	DroppedBytes int64 `json:"dropped_bytes"`
	// DeletedKeys is the number of keys whose damaged record is replaced by
	// a deletion of the key.
	DeletedKeys int `json:"deleted_keys"`
	// MovedTo is where the original file now is.
	MovedTo string `json:"moved_to,omitempty"`
}

// Repair rewrites the store file at path with every whole record it holds,
// in order, and without its damaged stretches, NUL bytes and a record cut
// short at its end. A damaged record whose key is still readable becomes a
// deletion of that key: the record may have changed or deleted it, and
// leaving the key's earlier value in place could bring back a revoked
// token or an old secret. The original is kept as <path>.damaged-<UTC
// time>, never deleted. Repair takes the store's lock, so it fails with a
// *LockedError while a gateway has the file open, and no gateway starts
// while it runs.
func Repair(path string, now time.Time) (*RepairResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lock, err := lockStore(path)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	s := newScanner(f, fi.Size())
	rep, err := s.scan(path)
	if err != nil {
		return nil, err
	}
	res := &RepairResult{Report: rep, Kept: rep.Records}
	if !rep.Damaged() && rep.PartialTail == nil {
		return res, nil
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".repair-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := writeRepaired(tmp, f, s, res); err != nil {
		return nil, fmt.Errorf("writing the repaired file: %w", err)
	}
	// The repaired file is the store's: its mode, owner and time (buntdb
	// reads `ex` expiries relative to the file's modification time).
	_ = tmp.Chmod(fi.Mode().Perm())
	chownLike(tmp, fi)
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	_ = os.Chtimes(tmp.Name(), time.Time{}, fi.ModTime())
	if again, err := checkRepaired(tmp.Name()); err != nil || again.Damaged() || again.PartialTail != nil || again.Records != res.Kept+res.DeletedKeys {
		return nil, fmt.Errorf("the repaired file does not read back as written (%v); the original is untouched", err)
	}

	moved, err := setAside(path, now)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("moving the repaired file into place (the original is %s): %w", moved, err)
	}
	tmp = nil
	syncDir(filepath.Dir(path))
	res.Repaired, res.MovedTo = true, moved
	return res, nil
}

// writeRepaired copies every whole record of src to dst, writing a
// deletion in place of each damaged stretch whose first key was readable.
func writeRepaired(dst io.Writer, src io.ReaderAt, s *scanner, res *RepairResult) error {
	rep := res.Report
	copyRange := func(from, to int64) error {
		_, err := io.Copy(dst, io.NewSectionReader(src, from, to-from))
		return err
	}
	// Whole records lie between the damaged stretches; NUL runs within
	// them are dropped by copying record by record.
	var p int64
	end := rep.Size
	if rep.PartialTail != nil {
		end = rep.PartialTail.Offset
		res.Dropped++
		res.DroppedBytes += rep.PartialTail.Length
	}
	next := 0
	for p < end {
		if next < len(rep.Damage) && rep.Damage[next].Offset == p {
			d := rep.Damage[next]
			next++
			res.Dropped += d.Records
			res.DroppedBytes += d.Length
			if d.hasKey {
				if _, err := dst.Write(deleteRecord(d.key)); err != nil {
					return err
				}
				res.DeletedKeys++
			}
			p += d.Length
			continue
		}
		if b := s.at(p, 1); len(b) == 1 && b[0] == 0 {
			p++ // trailing NULs (those between records are a damaged stretch)
			res.DroppedBytes++
			continue
		}
		rend, rerr := s.record(p)
		if rerr != nil {
			return fmt.Errorf("record at %d no longer reads: %s", p, rerr.reason)
		}
		if err := copyRange(p, rend); err != nil {
			return err
		}
		p = rend
	}
	return s.err
}

// deleteRecord is buntdb's record deleting key.
func deleteRecord(key string) []byte {
	b := []byte("*2\r\n$3\r\ndel\r\n$")
	b = strconv.AppendInt(b, int64(len(key)), 10)
	b = append(b, "\r\n"...)
	b = append(b, key...)
	return append(b, "\r\n"...)
}

func checkRepaired(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return scanFile(f, path)
}

// setAside keeps the original under a name with the UTC time, as a second
// link, so that path never goes missing: the repaired file replaces it in
// one rename.
func setAside(path string, now time.Time) (string, error) {
	base := path + ".damaged-" + now.UTC().Format("20060102T150405Z")
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			name = base + "-" + strconv.Itoa(i)
		}
		err := os.Link(path, name)
		if err == nil {
			return name, nil
		}
		if errors.Is(err, os.ErrExist) {
			continue
		}
		// A file system without hard links: copy instead.
		if err := copyFile(path, name); err != nil {
			return "", fmt.Errorf("keeping the original as %s: %w", name, err)
		}
		return name, nil
	}
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	chownLike(dst, fi)
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// syncDir makes renames in dir durable; where a directory cannot be
// synced, the rename still happened.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
