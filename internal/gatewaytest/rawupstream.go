package gatewaytest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Received is one request as a RawUpstream read it off the wire.
type Received struct {
	// RequestLine is the first line, e.g. "GET /api HTTP/1.1".
	RequestLine string
	// Header and Trailer are the header and trailer lines, "Name: value",
	// exactly as they arrived (no canonicalisation, no merging).
	Header, Trailer []string
	Body            []byte
}

// Fields returns the values of the lines whose name satisfies match.
func Fields(lines []string, match func(name string) bool) []string {
	var out []string
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		if match(name) {
			out = append(out, strings.TrimSpace(value))
		}
	}
	return out
}

// RawUpstream is an HTTP/1.1 upstream that parses requests itself, so that
// the header and trailer lines it records are what the gateway sent, not
// what a server library made of them. It answers every request 200 "ok"
// once it has read the whole body and its trailers.
type RawUpstream struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	reqs  []Received
}

// StartRawUpstream starts a RawUpstream, closed when the test ends.
func StartRawUpstream(t testing.TB) *RawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &RawUpstream{ln: ln, conns: map[net.Conn]bool{}}
	u.wg.Add(1)
	go u.accept()
	t.Cleanup(u.close)
	return u
}

// Addr is the upstream's host:port, for reverse_proxy.
func (u *RawUpstream) Addr() string { return u.ln.Addr().String() }

// Requests returns every request received so far.
func (u *RawUpstream) Requests() []Received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Received(nil), u.reqs...)
}

// Count is how many requests arrived.
func (u *RawUpstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *RawUpstream) close() {
	u.ln.Close()
	u.mu.Lock()
	for c := range u.conns {
		c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

func (u *RawUpstream) accept() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.conns[c] = true
		u.mu.Unlock()
		u.wg.Add(1)
		go u.serve(c)
	}
}

func (u *RawUpstream) serve(c net.Conn) {
	defer u.wg.Done()
	defer func() {
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReader(c)
	for {
		rec, err := readRawRequest(br)
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(err.Error()), err)
			}
			return
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, rec)
		u.mu.Unlock()
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// readRawRequest reads one request: its lines, and a body framed by
// Content-Length or chunked coding, with the trailer lines after it.
func readRawRequest(br *bufio.Reader) (Received, error) {
	var rec Received
	line, err := readLine(br)
	if err != nil {
		return rec, err
	}
	rec.RequestLine = line
	if rec.Header, err = readLines(br); err != nil {
		return rec, err
	}
	chunked := false
	length := 0
	for _, te := range Fields(rec.Header, func(n string) bool { return strings.EqualFold(n, "Transfer-Encoding") }) {
		chunked = chunked || strings.Contains(strings.ToLower(te), "chunked")
	}
	if cl := Fields(rec.Header, func(n string) bool { return strings.EqualFold(n, "Content-Length") }); len(cl) > 0 && !chunked {
		if length, err = strconv.Atoi(cl[0]); err != nil || length < 0 {
			return rec, fmt.Errorf("bad Content-Length %q", cl[0])
		}
	}
	if !chunked {
		rec.Body = make([]byte, length)
		_, err = io.ReadFull(br, rec.Body)
		return rec, err
	}
	for {
		size, err := readLine(br)
		if err != nil {
			return rec, err
		}
		size, _, _ = strings.Cut(size, ";")
		n, err := strconv.ParseUint(strings.TrimSpace(size), 16, 31)
		if err != nil {
			return rec, fmt.Errorf("bad chunk size %q", size)
		}
		if n == 0 {
			rec.Trailer, err = readLines(br)
			return rec, err
		}
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return rec, err
		}
		rec.Body = append(rec.Body, chunk[:n]...)
	}
}

// readLines reads lines up to the empty line that ends a header or
// trailer section.
func readLines(br *bufio.Reader) ([]string, error) {
	var lines []string
	for {
		l, err := readLine(br)
		if err != nil {
			return nil, err
		}
		if l == "" {
			return lines, nil
		}
		lines = append(lines, l)
	}
}

func readLine(br *bufio.Reader) (string, error) {
	l, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r"), nil
}
