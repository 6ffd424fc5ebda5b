// Package safefetch fetches documents from URLs that someone outside the
// gateway chose, such as a client ID metadata document, without letting
// them reach the gateway's own network: https only, every connection
// checked at dial time against the address it actually goes to (so a
// DNS answer that changes between a check and the connection cannot slip
// through), bounded in size and time, with no cookies, credentials or
// Referer. It has no Caddy in it.
package safefetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxBytes = 64 << 10
	DefaultTimeout  = 5 * time.Second
)

// Reasons a fetch fails, for errors.Is. Their texts name no address and
// nothing the remote server sent, so they can be shown to a person.
var (
	ErrBadURL    = errors.New("the URL is not an absolute https URL with a host and no user name or password")
	ErrRedirect  = errors.New("the server answered with a redirect, which is not followed")
	ErrTooLarge  = errors.New("the response is too large")
	ErrTimeout   = errors.New("the server did not answer in time")
	ErrStatus    = errors.New("the server did not answer 200 OK")
	ErrTransport = errors.New("the server could not be reached over https")
)

// Options configure a Fetcher.
type Options struct {
	// AllowPrivate admits loopback, private, link-local and the other
	// special-use unicast addresses (see CheckAddr). Default: false.
	AllowPrivate bool
	// MaxBytes caps the body. Default: DefaultMaxBytes.
	MaxBytes int64
	// Timeout caps a whole fetch: connection, TLS, headers and body.
	// Default: DefaultTimeout.
	Timeout time.Duration
	// MaxRedirects is how many redirects are followed, each to an https
	// URL checked like the first. Default: 0: a redirect is an error.
	MaxRedirects int
	// Accept is the Accept header. Default: application/json.
	Accept string
	// RootCAs verify the servers' certificates. Default: the system's
	// roots (which SSL_CERT_FILE and SSL_CERT_DIR replace).
	RootCAs *x509.CertPool

	// exempt admits addresses the guard would refuse; tests only.
	exempt func(netip.AddrPort) bool
}

// Fetcher gets documents under Options' rules. It is safe for concurrent
// use and keeps no connection open between fetches.
type Fetcher struct {
	o      Options
	client *http.Client
}

// New returns a Fetcher.
func New(o Options) *Fetcher {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Accept == "" {
		o.Accept = "application/json"
	}
	f := &Fetcher{o: o}
	dialer := &net.Dialer{Timeout: o.Timeout, Control: f.control}
	f.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // a proxy would connect on our behalf, past the guard
			DialContext:            dialer.DialContext,
			TLSClientConfig:        &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    o.Timeout,
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: 16 << 10,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: f.checkRedirect,
		// No Jar: no cookies are kept or sent.
	}
	return f
}

// control runs on every connection the transport opens, with the address
// the name resolved to: the check that counts, whatever DNS said before.
func (f *Fetcher) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || (network != "tcp4" && network != "tcp6") {
		return ErrForbiddenAddress
	}
	if f.o.exempt != nil && f.o.exempt(ap) {
		return nil
	}
	if err := CheckAddr(ap.Addr(), f.o.AllowPrivate); err != nil {
		return fmt.Errorf("%w (%s)", err, ap.Addr())
	}
	return nil
}

func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.o.MaxRedirects {
		return ErrRedirect
	}
	if err := CheckURL(req.URL); err != nil {
		return err
	}
	// Nothing of the previous request travels on.
	for _, h := range []string{"Referer", "Cookie", "Authorization"} {
		req.Header.Del(h)
	}
	return nil
}

// CheckURL accepts an absolute https URL with a host, no user name or
// password, and a host that is a DNS name or an IP address in its usual
// form: a host some resolvers read as a number (2130706433, 0x7f.1,
// 127.1, 0177.0.0.1) is refused, whatever it would reach.
func CheckURL(u *url.URL) error {
	if u.Scheme != "https" || u.Opaque != "" || u.User != nil || u.Host == "" {
		return ErrBadURL
	}
	host := u.Hostname()
	if host == "" || strings.ContainsAny(host, "%\\") {
		return ErrBadURL
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return ErrBadURL
		}
	}
	if strings.HasPrefix(u.Host, "[") {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return ErrBadURL
		}
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return ErrBadURL
		}
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if endsInNumber(labels[len(labels)-1]) {
		return ErrBadURL
	}
	return nil
}

// endsInNumber reports whether a last host label reads as a number: the
// WHATWG URL rule for a host that is an IPv4 address in another form.
func endsInNumber(label string) bool {
	s := strings.ToLower(label)
	if rest, ok := strings.CutPrefix(s, "0x"); ok {
		s = rest
		return strings.Trim(s, "0123456789abcdef") == ""
	}
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// Get fetches rawURL and returns the body of its 200 OK answer with the
// answer's header. Its errors match one of the Err values with errors.Is;
// their text may name the address refused, for the operator's log.
func (f *Fetcher) Get(ctx context.Context, rawURL string) (http.Header, []byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, ErrBadURL
	}
	if err := CheckURL(u); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, ErrBadURL
	}
	req.Header.Set("Accept", f.o.Accept)
	req.Header.Set("User-Agent", "caddy-oauth")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, nil, f.classify(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%w (%d)", ErrStatus, resp.StatusCode)
	}
	if resp.ContentLength > f.o.MaxBytes {
		return nil, nil, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, f.o.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.o.MaxBytes+1))
	if err == nil && ctx.Err() != nil {
		// A body cut off at the deadline can read as a clean end.
		err = ctx.Err()
	}
	if err != nil {
		return nil, nil, f.classify(ctx, err)
	}
	if int64(len(body)) > f.o.MaxBytes {
		return nil, nil, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, f.o.MaxBytes)
	}
	return resp.Header, body, nil
}

// classify names the reason of a failed request: a refused address, a
// redirect, the time cap, or else the transport.
func (f *Fetcher) classify(ctx context.Context, err error) error {
	for _, known := range []error{ErrForbiddenAddress, ErrRedirect, ErrBadURL} {
		if errors.Is(err, known) {
			return err
		}
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %v", ErrTransport, err)
}

// Reason is the text of err's reason, which names nothing the remote
// server chose: for an error page.
func Reason(err error) string {
	for _, known := range []error{ErrBadURL, ErrForbiddenAddress, ErrRedirect, ErrTooLarge, ErrTimeout, ErrStatus, ErrTransport} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return ErrTransport.Error()
}
