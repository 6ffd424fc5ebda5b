package caddyoauth

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// secretRedirectParams are the query parameters of a redirect that carry
// a credential: the authorization code (RFC 6749 §4.1.2).
var secretRedirectParams = []string{"code"}

// redirectWriter notes the status an endpoint answers with.
type redirectWriter struct {
	http.ResponseWriter
	status int
}

func (w *redirectWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *redirectWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveRedacted runs an endpoint, then keeps an authorization code in a
// redirect's Location out of the access log. Caddy's access log records
// the response headers from the header map once the handler returns, and
// redacts only cookies and Authorization; a code logged there could be
// redeemed by whoever reads the logs before the client does. The answer is
// flushed first, so the client gets the real Location; only the map the
// log reads is changed afterwards.
func serveRedacted(serve func(http.ResponseWriter) error, w http.ResponseWriter) error {
	rw := &redirectWriter{ResponseWriter: w}
	err := serve(rw)
	if rw.status < 300 || rw.status > 399 {
		return err
	}
	loc := w.Header().Get("Location")
	u, perr := url.Parse(loc)
	if loc == "" || perr != nil {
		return err
	}
	q := u.Query()
	redact := false
	for _, p := range secretRedirectParams {
		if q.Has(p) {
			q.Set(p, "REDACTED")
			redact = true
		}
	}
	if !redact {
		return err
	}
	if ferr := http.NewResponseController(w).Flush(); ferr != nil {
		return err // headers not known to be sent: leave them as they are
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	return err
}

// Caddy's access and error logs record the request URI as the client sent
// it: the server copies the request before any handler runs and writes the
// copy once the response is done, so no handler can change what they show.
// A client that puts a password, a secret or a token in the query (which
// the gateway refuses or ignores) would still leave it in the logs, for
// whoever reads them. So when the URI carries a credential parameter,
// oauth_server and oauth_protect take both entries over. The access log
// entry: they mark the request as one Caddy's log skips (the log_skip
// variable) and write the same entry themselves, to the same loggers, with
// the credentials' values replaced by REDACTED. The extra fields of
// log_append are not in that entry: Caddy keeps them out of reach. The
// error log entry, when the handlers below fail: they log the error with
// the redacted request, answer with its status and hand Caddy no error, so
// handle_errors routes do not run for such a request.

// credentialParams are the query parameters whose values are credentials
// (RFC 6749, 6750, 7009, 7521, 7636, 7662, 8628, 8693, OpenID Connect),
// matched without regard to case.
var credentialParams = []string{
	"access_token", "refresh_token", "id_token", "token", "code", "device_code",
	"password", "client_secret", "client_assertion", "assertion", "code_verifier",
	"id_token_hint", "subject_token", "actor_token", "csrf_token",
}

// redactedValue replaces a credential in a logged URI.
const redactedValue = "REDACTED"

// redactURI returns uri with the value of every credential parameter of
// its query replaced, and whether there was one. Pairs are split at '&'
// and ';' (a server may take either as a separator), and a name that does
// not decode counts as a credential.
func redactURI(uri string) (string, bool) {
	q := strings.IndexByte(uri, '?')
	if q < 0 || !hasCredential(uri[q+1:]) {
		return uri, false
	}
	var b strings.Builder
	b.WriteString(uri[:q+1])
	for rest := uri[q+1:]; ; {
		end := strings.IndexAny(rest, "&;")
		pair := rest
		if end >= 0 {
			pair = rest[:end]
		}
		if name, _, ok := strings.Cut(pair, "="); ok && isCredentialParam(name) {
			pair = name + "=" + redactedValue
		}
		b.WriteString(pair)
		if end < 0 {
			return b.String(), true
		}
		b.WriteByte(rest[end])
		rest = rest[end+1:]
	}
}

// hasCredential reports whether a raw query has a credential parameter,
// without allocating for the usual query that has none.
func hasCredential(query string) bool {
	for query != "" {
		end := strings.IndexAny(query, "&;")
		pair := query
		if end >= 0 {
			pair, query = query[:end], query[end+1:]
		} else {
			query = ""
		}
		if name, _, ok := strings.Cut(pair, "="); ok && isCredentialParam(name) {
			return true
		}
	}
	return false
}

func isCredentialParam(raw string) bool {
	name := raw
	if strings.ContainsAny(raw, "%+") {
		var err error
		if name, err = url.QueryUnescape(raw); err != nil {
			return true
		}
	}
	for _, p := range credentialParams {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return false
}

// accessLog writes the entries the gateway takes over from Caddy's access
// and error logs.
type accessLog struct {
	// base is the http app's access logger, "http.log.access", whose
	// cores are those of the logs that include it; errs is its error
	// logger, "http.log.error".
	base, errs *zap.Logger
}

// newAccessLog returns the access log of the config provisioning ctx, or
// nil without an http app.
func newAccessLog(ctx caddy.Context) *accessLog {
	h, err := ctx.AppIfConfigured("http")
	if err != nil {
		return nil
	}
	httpApp, ok := h.(*caddyhttp.App)
	if !ok {
		return nil
	}
	// Caddy's access logger is the http app's (its logger named
	// log.access): a log that includes only http.log.access.* gives its
	// cores to the http app alone, so the logger is asked for that module.
	logger := ctx.Logger(httpApp)
	return &accessLog{base: logger.Named("log.access"), errs: logger.Named("log.error")}
}

// guardedVar marks a request one gateway handler guards already.
const guardedVar = "oauth_log_guarded"

// takeOver checks whether the request's URI carries a credential; if so,
// it returns the writer for the handler and the function to call with the
// handler's result, which writes the redacted log entries and returns the
// error to hand Caddy (none). Otherwise it returns w and nil.
func (l *accessLog) takeOver(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func(error) error) {
	if l == nil {
		return w, nil
	}
	ctx := r.Context()
	// The entries show the request as it arrived, before any rewrite.
	orig, ok := ctx.Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || strings.IndexByte(orig.RequestURI, '?') < 0 {
		return w, nil
	}
	uri, found := redactURI(orig.RequestURI)
	if !found {
		return w, nil
	}
	if guarded, _ := caddyhttp.GetVar(ctx, guardedVar).(bool); guarded {
		return w, nil
	}
	caddyhttp.SetVar(ctx, guardedVar, true)
	var logs *caddyhttp.ServerLogConfig
	if srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); srv != nil {
		logs = srv.Logs
	}
	access := logs != nil && loggedHost(logs, r.Host)
	if skip, _ := caddyhttp.GetVar(ctx, caddyhttp.LogSkipVar).(bool); skip {
		access = false
	}
	if access {
		caddyhttp.SetVar(ctx, caddyhttp.LogSkipVar, true)
	}

	req := r.Clone(ctx)
	req.Method, req.RemoteAddr, req.RequestURI = orig.Method, orig.RemoteAddr, uri
	start, ok := caddyhttp.GetVar(ctx, "start_time").(time.Time)
	if !ok {
		start = time.Now()
	}
	body := &countingBody{ReadCloser: r.Body}
	if r.Body != nil {
		r.Body = body
	}
	rec := caddyhttp.NewResponseRecorder(w, nil, nil)
	return rec, func(err error) error {
		d := time.Since(start)
		if err != nil {
			status := errorStatus(err)
			l.writeError(logs, access, req, d, status, err)
			if rec.Status() == 0 {
				rec.WriteHeader(status)
			}
		}
		if access {
			l.write(logs, req, rec, body.n, d, nil)
		}
		return nil
	}
}

// errorStatus is the status Caddy answers a handler error with.
func errorStatus(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.StatusCode != 0 {
		return he.StatusCode
	}
	return http.StatusInternalServerError
}

// writeError logs a handler's error as Caddy's server does, to its error
// logger, named after the access loggers when the request is logged.
func (l *accessLog) writeError(logs *caddyhttp.ServerLogConfig, logged bool, req *http.Request, d time.Duration, status int, err error) {
	level := zapcore.DebugLevel
	if status >= 500 {
		level = zapcore.ErrorLevel
	}
	msg := err.Error()
	var he caddyhttp.HandlerError
	fields := []zap.Field{
		zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: req, ShouldLogCredentials: logs != nil && logs.ShouldLogCredentials}),
		zap.Duration("duration", d),
	}
	if errors.As(err, &he) {
		if he.Err != nil {
			msg = he.Err.Error()
		}
		fields = append(fields, zap.Int("status", he.StatusCode), zap.String("err_id", he.ID), zap.String("err_trace", he.Trace))
	} else {
		fields = append(fields, zap.Error(err))
	}
	loggers := []*zap.Logger{l.errs}
	if logged {
		loggers = loggers[:0]
		for _, name := range loggerNames(logs, req) {
			logger := l.errs
			if name != "" {
				logger = logger.Named(name)
			}
			loggers = append(loggers, logger)
		}
	}
	for _, logger := range loggers {
		if c := logger.Check(level, msg); c != nil {
			c.Write(fields...)
		}
	}
}

// write logs one entry as Caddy's server does (logRequest), with the
// status Caddy answers a handler error with.
func (l *accessLog) write(logs *caddyhttp.ServerLogConfig, req *http.Request, rec caddyhttp.ResponseRecorder, read int, d time.Duration, err error) {
	status, size := rec.Status(), rec.Size()
	if err != nil {
		status = http.StatusInternalServerError
		var he caddyhttp.HandlerError
		if errors.As(err, &he) && he.StatusCode != 0 {
			status = he.StatusCode
		}
	}
	level := zapcore.InfoLevel
	if status >= 500 {
		level = zapcore.ErrorLevel
	}
	ctx := req.Context()
	if name, ok := caddyhttp.GetVar(ctx, caddyhttp.LogLevelVar).(string); ok {
		if lv, err := zapcore.ParseLevel(name); err == nil && lv >= zapcore.DebugLevel && lv <= zapcore.ErrorLevel {
			level = lv
		}
	}
	msg := "handled request"
	if nop, _ := caddyhttp.GetVar(ctx, "unhandled").(bool); nop {
		msg = "NOP"
	}
	userID := ""
	if repl, ok := ctx.Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		userID, _ = repl.GetString("http.auth.user.id")
	}
	fields := []zap.Field{
		zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: req, ShouldLogCredentials: logs.ShouldLogCredentials}),
		zap.Int("bytes_read", read),
		zap.String("user_id", userID),
		zap.Duration("duration", d),
		zap.Int("size", size),
		zap.Int("status", status),
		zap.Object("resp_headers", caddyhttp.LoggableHTTPHeader{Header: rec.Header(), ShouldLogCredentials: logs.ShouldLogCredentials}),
	}
	for _, name := range loggerNames(logs, req) {
		logger := l.base
		if name != "" {
			logger = logger.Named(name)
		}
		if c := logger.Check(level, msg); c != nil {
			c.Write(fields...)
		}
	}
}

// loggedHost reports whether the server logs requests to host, as Caddy's
// server decides (shouldLogRequest).
func loggedHost(logs *caddyhttp.ServerLogConfig, host string) bool {
	h := hostOnly(host)
	for name := range logs.LoggerNames {
		if certmagic.MatchWildcard(h, name) {
			return true
		}
	}
	for _, skip := range logs.SkipHosts {
		if certmagic.MatchWildcard(h, skip) {
			return false
		}
	}
	return !logs.SkipUnmappedHosts
}

// loggerNames are the names of the access loggers of the request, as
// Caddy's server picks them (ServerLogConfig.wrapLogger): those a handler
// set in the access_logger_names variable, else those the server maps the
// host to; "" is the default logger.
func loggerNames(logs *caddyhttp.ServerLogConfig, r *http.Request) []string {
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.AccessLoggerNameVarKey).([]any); ok {
		out := make([]string, 0, len(v))
		for _, n := range v {
			s, _ := n.(string)
			out = append(out, s)
		}
		return out
	}
	host := strings.ToLower(hostOnly(r.Host))
	if names, ok := logs.LoggerNames[host]; ok {
		return names
	}
	labels := strings.Split(host, ".")
	for i := range labels {
		if labels[i] == "" {
			continue
		}
		labels[i] = "*"
		if names, ok := logs.LoggerNames[strings.Join(labels, ".")]; ok {
			return names
		}
	}
	return []string{logs.DefaultLoggerName}
}

func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += n
	return n, err
}
