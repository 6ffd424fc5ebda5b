package safefetch

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bounds say how long a fetched document may be kept: at least Min, at
// most Max, and Default when its headers say nothing.
type Bounds struct {
	Min, Max, Default time.Duration
}

// Lifetime is how long a document served with header may be kept, from
// its Cache-Control (no-store, no-cache, max-age, less its Age) or else
// its Expires, within b. no-store, no-cache, a max-age that does not
// parse and an invalid Expires all mean Min: a busy client costs at most
// one fetch per Min.
func Lifetime(header http.Header, now time.Time, b Bounds) time.Duration {
	ttl, known := b.Default, false
	maxSeconds := int64(b.Max / time.Second)
	for _, v := range header.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return b.Min
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || n < 0 {
					return b.Min
				}
				ttl, known = time.Duration(min(n, maxSeconds))*time.Second, true
			}
		}
	}
	if known {
		if age, err := strconv.ParseInt(header.Get("Age"), 10, 64); err == nil && age > 0 {
			ttl -= time.Duration(min(age, maxSeconds)) * time.Second
		}
	} else if exp := header.Get("Expires"); exp != "" {
		t, err := http.ParseTime(exp)
		if err != nil {
			return b.Min // an invalid Expires means already expired
		}
		base := now
		if d, err := http.ParseTime(header.Get("Date")); err == nil {
			base = d
		}
		ttl = t.Sub(base)
	}
	return min(max(ttl, b.Min), b.Max)
}
