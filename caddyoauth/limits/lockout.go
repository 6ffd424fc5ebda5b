package limits

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/caddyoauth/gateway/caddyoauth/store"
)

// Defaults of a LockoutPolicy.
const (
	DefaultLockoutWindow    = 15 * time.Minute
	DefaultSlowAfter        = 3
	DefaultLockAfter        = 10
	DefaultLockFor          = 15 * time.Minute
	DefaultAddressLockAfter = 100
	DefaultAccountSlowAfter = 20
)

// AccountMaxWait caps the wait of the per-account slowdown, so that an
// attacker can slow an account down but never lock its owner out.
const AccountMaxWait = 30 * time.Second

// LockoutPolicy says how failed sign-ins slow down and then lock further
// attempts. Failures are counted per username and source address, so an
// attacker locks a user out only from the attacker's own address; per
// address alone, so one address cannot try many usernames either; and per
// username across addresses, which only slows attempts down (at most
// AccountMaxWait each), so that many addresses cannot guess one password
// quickly, nor lock its owner out. An address is an IPv4 address or an
// IPv6 /64 (AddressKey); a username is counted in its normal form
// (NormalizeUsername). The lockout treats every username alike, existing
// or not, and so reveals nothing about which exist.
type LockoutPolicy struct {
	// Window is how long failures are counted from the first one.
	Window time.Duration
	// SlowAfter is the number of failures of one username from one address
	// after which each further failure makes the next attempt wait: 1s,
	// then 2s, 4s, and so on.
	SlowAfter int
	// LockAfter is the number of such failures after which attempts are
	// locked for LockFor.
	LockAfter int
	// LockFor is how long a lock lasts.
	LockFor time.Duration
	// AddressLockAfter is the number of failures from one address, over
	// all usernames, after which that address is locked for LockFor.
	AddressLockAfter int
	// AccountSlowAfter is the number of failures of one username within
	// Window, from any address, after which each further failure makes
	// every attempt on that username wait: 1s, then 2s, 4s, and so on up to
	// AccountMaxWait.
	AccountSlowAfter int
}

// WithDefaults fills the zero fields of p with the defaults.
func (p LockoutPolicy) WithDefaults() LockoutPolicy {
	if p.Window <= 0 {
		p.Window = DefaultLockoutWindow
	}
	if p.SlowAfter <= 0 {
		p.SlowAfter = DefaultSlowAfter
	}
	if p.LockAfter <= 0 {
		p.LockAfter = DefaultLockAfter
	}
	if p.LockFor <= 0 {
		p.LockFor = DefaultLockFor
	}
	if p.AddressLockAfter <= 0 {
		p.AddressLockAfter = DefaultAddressLockAfter
	}
	if p.AccountSlowAfter <= 0 {
		p.AccountSlowAfter = DefaultAccountSlowAfter
	}
	return p
}

// Lockout applies a LockoutPolicy with its state in a store.
type Lockout struct {
	store  store.Store
	policy LockoutPolicy
	ns     string // key namespace, so that two lockouts never share counts
	// Now is the clock; tests replace it. Default: time.Now.
	Now func() time.Time
}

// NewLockout returns a lockout keeping its state in s; zero fields of p
// take their defaults.
func NewLockout(s store.Store, p LockoutPolicy) *Lockout {
	return &Lockout{store: s, policy: p.WithDefaults(), ns: "lo:", Now: time.Now}
}

// NewClientLockout is NewLockout for the authentication of clients
// instead of people: the names it counts are client_ids, kept apart from
// usernames, so failed sign-ins and failed client authentications never
// lock each other. A client's secret is never mistyped by a person, and
// each check of a secret_hash costs a bcrypt comparison, so there is no
// slow phase: the SlowAfter-th failure from an address locks at once.
func NewClientLockout(s store.Store, p LockoutPolicy) *Lockout {
	l := NewLockout(s, p)
	l.policy.LockAfter = min(l.policy.LockAfter, l.policy.SlowAfter)
	l.ns = "lo:c:"
	return l
}

// Policy returns the policy in force, defaults filled in.
func (l *Lockout) Policy() LockoutPolicy { return l.policy }

// NormalizeUsername is the form in which the lockout counts a username:
// Unicode NFKC, without surrounding spaces, in lower case. Spellings that
// a legacy system may take for one account (ALICE, " alice", fullwidth
// ａｌｉｃｅ) share one count.
func NormalizeUsername(username string) string {
	return strings.ToLower(strings.TrimSpace(norm.NFKC.String(username)))
}

// AddressKey is what the limits count as one source address: an IPv4
// address (mapped into IPv6 or not), or the /64 of an IPv6 address, the
// block one subscriber gets, so that rotating addresses inside it gives no
// fresh budget. Anything that is not an IP address counts as written.
func AddressKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// The ids the lockout counts under: a username at an address, an address,
// a username from anywhere.
func userAddr(username, addr string) string {
	return digest(NormalizeUsername(username), AddressKey(addr))
}
func addrID(addr string) string        { return digest(AddressKey(addr)) }
func accountID(username string) string { return digest("account", NormalizeUsername(username)) }

func (l *Lockout) lockKey(id string) string { return l.ns + "lock:" + id }

// Check reports how long an attempt for username from addr must wait; 0
// lets it go on. Call it before checking the password, and refuse the
// attempt without checking the password while it is locked.
func (l *Lockout) Check(ctx context.Context, username, addr string) (time.Duration, error) {
	now := l.Now()
	var wait time.Duration
	for _, id := range []string{userAddr(username, addr), addrID(addr), accountID(username)} {
		b, err := l.store.Get(ctx, l.lockKey(id))
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return 0, err
		}
		until, _ := strconv.ParseInt(string(b), 10, 64)
		if left := time.Duration(until - now.UnixNano()); left > wait {
			wait = left
		}
	}
	if wait > 0 {
		return roundUp(wait), nil
	}
	return 0, nil
}

// Failed records a failed attempt and returns how long the next attempt
// must wait (0: none).
func (l *Lockout) Failed(ctx context.Context, username, addr string) (time.Duration, error) {
	p := l.policy
	ua, a, acct := userAddr(username, addr), addrID(addr), accountID(username)
	n, err := l.store.Incr(ctx, l.ns+"fail:"+ua, p.Window)
	if err != nil {
		return 0, err
	}
	na, err := l.store.Incr(ctx, l.ns+"afail:"+a, p.Window)
	if err != nil {
		return 0, err
	}
	nu, err := l.store.Incr(ctx, l.ns+"ufail:"+acct, p.Window)
	if err != nil {
		return 0, err
	}
	var wait time.Duration
	switch {
	case int(n) >= p.LockAfter:
		wait = p.LockFor
	case int(n) >= p.SlowAfter:
		wait = min(time.Second<<min(int(n)-p.SlowAfter, 30), p.LockFor)
	}
	if wait > 0 {
		if err := l.lock(ctx, ua, wait); err != nil {
			return 0, err
		}
	}
	if int(na) >= p.AddressLockAfter {
		if err := l.lock(ctx, a, p.LockFor); err != nil {
			return 0, err
		}
		wait = p.LockFor
	}
	if int(nu) >= p.AccountSlowAfter {
		// Slowed, never locked: the account's own lock is short.
		d := min(time.Second<<min(int(nu)-p.AccountSlowAfter, 30), AccountMaxWait)
		if err := l.lock(ctx, acct, d); err != nil {
			return 0, err
		}
		wait = max(wait, d)
	}
	if wait > 0 {
		return roundUp(wait), nil
	}
	return 0, nil
}

func (l *Lockout) lock(ctx context.Context, id string, d time.Duration) error {
	until := l.Now().Add(d).UnixNano()
	return l.store.Put(ctx, l.lockKey(id), []byte(strconv.FormatInt(until, 10)), d)
}

// Succeeded clears the failures of username from addr. The address's and
// the account's counts stay, so that one known password does not reset a
// spraying attacker's count, nor a real sign-in the count of an attacker
// guessing that account from elsewhere.
func (l *Lockout) Succeeded(ctx context.Context, username, addr string) error {
	ua := userAddr(username, addr)
	return l.store.Delete(ctx, l.ns+"fail:"+ua, l.lockKey(ua))
}
