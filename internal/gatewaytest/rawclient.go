package gatewaytest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Field is one header or trailer field as it is put on the wire.
type Field struct{ Name, Value string }

// RawRequest is a request written field by field, so that no client
// library normalises, merges, drops or refuses any of its fields.
type RawRequest struct {
	Method, Path string
	Header       []Field
	// Body, sent chunked in HTTP/1.1 when there are trailers.
	Body string
	// Trailer fields, sent after the body whether or not a Trailer header
	// field declared them.
	Trailer []Field
}

// ErrRefused wraps a refusal that is not an HTTP response: a reset
// stream or a closed connection.
var ErrRefused = errors.New("refused without a response")

const rawTimeout = 10 * time.Second

// SendHTTP1 writes req as HTTP/1.1 bytes on a new connection to addr,
// over TLS when tlsConf is set, and returns the response status.
func SendHTTP1(t testing.TB, addr string, tlsConf *tls.Config, req RawRequest) (int, error) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.Path, addr)
	for _, f := range req.Header {
		fmt.Fprintf(&b, "%s: %s\r\n", f.Name, f.Value)
	}
	switch {
	case len(req.Trailer) > 0:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if req.Body != "" {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(req.Body), req.Body)
		}
		b.WriteString("0\r\n")
		for _, f := range req.Trailer {
			fmt.Fprintf(&b, "%s: %s\r\n", f.Name, f.Value)
		}
		b.WriteString("\r\n")
	case req.Body != "":
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(req.Body), req.Body)
	default:
		b.WriteString("\r\n")
	}
	var c net.Conn
	var err error
	if tlsConf != nil {
		conf := tlsConf.Clone()
		conf.NextProtos = []string{"http/1.1"}
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: rawTimeout}, "tcp", addr, conf)
	} else {
		c, err = net.DialTimeout("tcp", addr, rawTimeout)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(rawTimeout))
	// A server that refuses early may close before all is written: the
	// response read below tells.
	_, _ = io.WriteString(c, b.String())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// SendHTTP2 sends req on a new HTTP/2 connection to the TLS site at addr,
// with field names in lower case as HTTP/2 requires, and returns the
// response status.
func SendHTTP2(t testing.TB, addr string, tlsConf *tls.Config, req RawRequest) (int, error) {
	t.Helper()
	conf := tlsConf.Clone()
	conf.NextProtos = []string{"h2"}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: rawTimeout}, "tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, not h2", p)
	}
	_ = c.SetDeadline(time.Now().Add(rawTimeout))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	block := func(pseudo bool, fields []Field) []byte {
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		if pseudo {
			for _, f := range []Field{{":method", req.Method}, {":scheme", "https"}, {":authority", addr}, {":path", req.Path}} {
				_ = enc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value})
			}
		}
		for _, f := range fields {
			_ = enc.WriteField(hpack.HeaderField{Name: strings.ToLower(f.Name), Value: f.Value})
		}
		return buf.Bytes()
	}
	noBody := req.Body == "" && len(req.Trailer) == 0
	err = fr.WriteSettings()
	if err == nil {
		err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(true, req.Header), EndStream: noBody, EndHeaders: true})
	}
	if err == nil && req.Body != "" {
		err = fr.WriteData(1, len(req.Trailer) == 0, []byte(req.Body))
	}
	if err == nil && len(req.Trailer) > 0 {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(false, req.Trailer), EndStream: true, EndHeaders: true})
	}
	// A write error means the server closed the connection early: the
	// frames read below tell why.
	status := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return status, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				err = fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				err = fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 && status == 0 {
				_, err = fmt.Sscan(f.PseudoValue("status"), &status)
			}
			if f.StreamID == 1 && f.StreamEnded() {
				return status, err
			}
		case *http2.DataFrame:
			if f.StreamID == 1 && f.StreamEnded() {
				return status, nil
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return status, fmt.Errorf("%w: stream reset: %v", ErrRefused, f.ErrCode)
			}
		case *http2.GoAwayFrame:
			return status, fmt.Errorf("%w: GOAWAY %v", ErrRefused, f.ErrCode)
		}
		if err != nil {
			return status, fmt.Errorf("%w: %v", ErrRefused, err)
		}
	}
}

// SendHTTP3 sends req on a new HTTP/3 connection to the site at addr (UDP),
// with field names in lower case as HTTP/3 requires, and returns the
// response status.
func SendHTTP3(t testing.TB, addr string, tlsConf *tls.Config, req RawRequest) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
	defer cancel()
	conf := tlsConf.Clone()
	conf.NextProtos = []string{"h3"}
	conn, err := quic.DialAddr(ctx, addr, conf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	// RFC 9114 §6.2.1: the control stream, with an empty SETTINGS frame.
	ctrl, err := conn.OpenUniStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.Write([]byte{0x00, 0x04, 0x00}); err != nil {
		t.Fatal(err)
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = str.SetDeadline(time.Now().Add(rawTimeout))
	frame := func(typ uint64, payload []byte) []byte {
		b := quicvarint.Append(nil, typ)
		b = quicvarint.Append(b, uint64(len(payload)))
		return append(b, payload...)
	}
	block := func(pseudo bool, fields []Field) []byte {
		var buf bytes.Buffer
		enc := qpack.NewEncoder(&buf)
		if pseudo {
			for _, f := range []Field{{":method", req.Method}, {":scheme", "https"}, {":authority", addr}, {":path", req.Path}} {
				_ = enc.WriteField(qpack.HeaderField{Name: f.Name, Value: f.Value})
			}
		}
		for _, f := range fields {
			_ = enc.WriteField(qpack.HeaderField{Name: strings.ToLower(f.Name), Value: f.Value})
		}
		return buf.Bytes()
	}
	out := frame(0x01, block(true, req.Header))
	if req.Body != "" {
		out = append(out, frame(0x00, []byte(req.Body))...)
	}
	if len(req.Trailer) > 0 {
		out = append(out, frame(0x01, block(false, req.Trailer))...)
	}
	// The server may refuse the request by cancelling the stream before
	// it is all written: the response read below tells.
	if _, err := str.Write(out); err == nil {
		_ = str.Close()
	}
	br := bufio.NewReader(str)
	status := 0
	for {
		typ, err := quicvarint.Read(br)
		if err == io.EOF && status != 0 {
			return status, nil
		}
		var length uint64
		if err == nil {
			length, err = quicvarint.Read(br)
		}
		if err == nil && length > 1<<20 {
			err = fmt.Errorf("a %d-byte frame", length)
		}
		var payload []byte
		if err == nil {
			payload = make([]byte, length)
			_, err = io.ReadFull(br, payload)
		}
		if err != nil {
			return status, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		if typ == 0x01 && status == 0 {
			dec := qpack.NewDecoder().Decode(payload)
			for {
				hf, err := dec()
				if err != nil {
					break
				}
				if hf.Name == ":status" {
					_, _ = fmt.Sscan(hf.Value, &status)
				}
			}
		}
	}
}
