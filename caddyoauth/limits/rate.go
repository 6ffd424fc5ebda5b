// Package limits holds the gateway's abuse protection, written over
// store.Store so that it holds across every gateway instance sharing a
// store: rate limits (sliding-window counters) and the login lockout.
// It knows nothing of Caddy; the caddyoauth package decides what a key
// is (a client_id, a source address, a username).
package limits

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// Rate is a limit of Events per Per on average, allowing bursts of up to
// Burst events at once.
type Rate struct {
	Events int
	Per    time.Duration
	Burst  int // Default: Events
}

// ParseRate reads a rate written as <events>/<period>, the period being
// s, m, h or a duration such as 10s or 15m: 20/s, 5/m, 100/10s.
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q is not <events>/<period>, such as 20/s", s)
	}
	events, err := strconv.Atoi(n)
	if err != nil || events < 1 || events > 1_000_000_000 {
		return Rate{}, fmt.Errorf("rate %q: the number of events must be a positive integer", s)
	}
	var d time.Duration
	switch per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		d, err = time.ParseDuration(per)
		if err != nil {
			return Rate{}, fmt.Errorf("rate %q: the period must be s, m, h or a duration such as 10s", s)
		}
	}
	if d < time.Millisecond || d > 24*time.Hour {
		return Rate{}, fmt.Errorf("rate %q: the period must be between 1ms and 24h", s)
	}
	return Rate{Events: events, Per: d, Burst: events}, nil
}

// String writes the rate back in the syntax ParseRate reads.
func (r Rate) String() string {
	s := strconv.Itoa(r.Events) + "/"
	switch r.Per {
	case time.Second:
		s += "s"
	case time.Minute:
		s += "m"
	case time.Hour:
		s += "h"
	default:
		s += r.Per.String()
	}
	if r.Burst != r.Events && r.Burst > 0 {
		s += " burst " + strconv.Itoa(r.Burst)
	}
	return s
}

// Validate checks a rate built by hand (from JSON).
func (r Rate) Validate() error {
	if r.Events < 1 || r.Per < time.Millisecond || r.Per > 24*time.Hour {
		return errors.New("a rate needs events >= 1 and a period between 1ms and 24h")
	}
	if r.Burst < 0 {
		return errors.New("burst must not be negative")
	}
	if r.window() < time.Millisecond {
		return errors.New("the burst is too small for the rate: the burst must last at least 1ms at that rate")
	}
	return nil
}

// window is the span the counters cover: the time in which the average
// rate lets a full burst through. A sliding window of that length holding
// at most Burst events allows Events per Per in the long run and at most
// Burst at once.
func (r Rate) window() time.Duration {
	return time.Duration(float64(r.Per) * float64(r.burst()) / float64(r.Events))
}

func (r Rate) burst() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return r.Events
}

// Limiter counts events in a store. Every instance sharing the store shares
// the counts.
type Limiter struct {
	store store.Store
	// Now is the clock; tests replace it. Default: time.Now.
	Now func() time.Time
}

// NewLimiter returns a limiter keeping its counters in s.
func NewLimiter(s store.Store) *Limiter {
	return &Limiter{store: s, Now: time.Now}
}

// Decision is the answer to one event.
type Decision struct {
	Allowed bool
	// RetryAfter is how long a refused caller should wait, rounded up to
	// whole seconds (HTTP's Retry-After has no finer unit).
	RetryAfter time.Duration
}

// digest keeps keys short and bounded, and keeps addresses and usernames
// out of the store's key space in plain.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Allow decides whether one more event for key may happen under the named
// limit, and counts it when it may. It approximates a sliding window with
// two fixed windows: the current count plus the previous one weighted by
// how much of it still overlaps. The current count is read first, so a
// refused event is not counted and a client just over the rate still gets
// the rate through; the count itself goes up with the store's atomic
// Incr, so racing callers on any instance never pass more than the limit
// between them. A store error is returned with an allowing decision, for
// the caller to log: a broken counter must not take the service down.
func (l *Limiter) Allow(ctx context.Context, name string, r Rate, key string) (Decision, error) {
	return l.decide(ctx, name, r, key, true)
}

// Peek is Allow without counting: whether one more event would be allowed
// now. With Charge after the event, it spends the budget only on events
// that turn out to deserve it (a grant that succeeded), at the price of
// letting racing callers pass a little over the limit.
func (l *Limiter) Peek(ctx context.Context, name string, r Rate, key string) (Decision, error) {
	return l.decide(ctx, name, r, key, false)
}

// Charge counts one event for key under the named limit, allowed or not.
func (l *Limiter) Charge(ctx context.Context, name string, r Rate, key string) error {
	w := r.window()
	if w <= 0 {
		return nil
	}
	idx := l.Now().UnixNano() / int64(w)
	_, err := l.store.Incr(ctx, rateKey(name, key)+strconv.FormatInt(idx, 10), 2*w)
	return err
}

func rateKey(name, key string) string { return "rl:" + name + ":" + digest(key) + ":" }

func (l *Limiter) decide(ctx context.Context, name string, r Rate, key string, count bool) (Decision, error) {
	w := r.window()
	if w <= 0 {
		return Decision{Allowed: true}, nil
	}
	now := l.Now()
	idx := now.UnixNano() / int64(w)
	base := rateKey(name, key)
	curKey := base + strconv.FormatInt(idx, 10)
	prev, err := l.count(ctx, base+strconv.FormatInt(idx-1, 10), true)
	if err != nil {
		return Decision{Allowed: true}, err
	}
	cur, err := l.count(ctx, curKey, false)
	if err != nil {
		return Decision{Allowed: true}, err
	}
	elapsed := float64(now.UnixNano()-idx*int64(w)) / float64(w) // in [0, 1)
	limit := float64(r.burst())
	weighted := float64(prev) * (1 - elapsed)
	if weighted+float64(cur)+1 <= limit {
		if !count {
			return Decision{Allowed: true}, nil
		}
		n, err := l.store.Incr(ctx, curKey, 2*w)
		if err != nil {
			return Decision{Allowed: true}, err
		}
		if weighted+float64(n) <= limit {
			return Decision{Allowed: true}, nil
		}
		cur = n - 1 // others got there first
	}
	// When would one more event fit?
	var wait float64 // in windows
	if float64(cur)+1 > limit {
		// Only after this window ends, once enough of it has slid out.
		wait = (1 - elapsed) + max(0, 1-(limit-1)/float64(cur))
	} else {
		wait = (1 - (limit-float64(cur)-1)/float64(prev)) - elapsed
	}
	return Decision{RetryAfter: roundUp(time.Duration(wait * float64(w)))}, nil
}

// count reads a window's counter; a missing one is 0. The previous
// window no longer changes much, so it may come from the store's cache.
func (l *Limiter) count(ctx context.Context, key string, cached bool) (int64, error) {
	get := l.store.Get
	if cached {
		get = l.store.Lookup
	}
	b, err := get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	n, _ := strconv.ParseInt(string(b), 10, 64)
	return n, nil
}

// roundUp rounds d up to whole seconds, at least one.
func roundUp(d time.Duration) time.Duration {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		s = 1
	}
	return time.Duration(s) * time.Second
}
