package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
	"github.com/caddyoauth/gateway/caddyoauth/dpop"
	"github.com/caddyoauth/gateway/caddyoauth/limits"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves client management on Caddy's admin endpoint, so it has
// the admin API's listener and access controls:
//
//	POST   /oauth/clients                 register (RFC 7591 metadata)
//	GET    /oauth/clients                 list, static clients read-only
//	GET    /oauth/clients/{id}
//	PATCH  /oauth/clients/{id}            change the given fields
//	POST   /oauth/clients/{id}/secret     rotate the secret
//	DELETE /oauth/clients/{id}
//	POST   /oauth/users/{user_id}/revoke  end a user's tokens, sessions and consents
//	GET    /oauth/store/backup            a snapshot of the store (store_backup.go)
//	POST   /oauth/store/restore           load a snapshot into the store
//
// Requests with a method that changes something and a body must say
// Content-Type: application/json (a snapshot: application/x-ndjson),
// which a browser cannot send cross-origin
// without a preflight, so a web page cannot drive this API; Caddy's admin
// endpoint refuses other origins' bodyless requests by their Origin header.
type adminAPI struct {
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.oauth",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Provision sets up the admin routes' logger. The oauth app is found per
// request: Caddy provisions admin routers apart from the apps.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	return nil
}

// Routes implements caddy.AdminRouter.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/oauth/", Handler: caddy.AdminHandlerFunc(a.serve)},
		{Pattern: "/oauth/store/backup", Handler: caddy.AdminHandlerFunc(a.serveBackup)},
		{Pattern: "/oauth/store/restore", Handler: caddy.AdminHandlerFunc(a.serveRestore)},
	}
}

// running is the oauth app of the running config, for the admin API,
// which Caddy provisions apart from the apps. Caddy starts a new config
// before it stops the old one, so Stop clears it only when it is its own.
var running struct {
	sync.Mutex
	app *App
}

func setRunningApp(a *App) {
	running.Lock()
	defer running.Unlock()
	running.app = a
}

func clearRunningApp(a *App) {
	running.Lock()
	defer running.Unlock()
	if running.app == a {
		running.app = nil
	}
}

func runningApp() *App {
	running.Lock()
	defer running.Unlock()
	return running.app
}

// maxAdminBody caps a request body of the admin API.
const maxAdminBody = 64 << 10

func (a *adminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	app := runningApp()
	if app == nil || app.registry == nil {
		w.Header().Set("Retry-After", "1")
		writeAPIJSON(w, http.StatusServiceUnavailable, &clients.RegError{Code: "temporarily_unavailable", Desc: "no oauth app is running"})
		return nil
	}
	if (r.Method == http.MethodPost || r.Method == http.MethodPatch) && needsJSONType(r) {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "application/json" {
			writeAPIJSON(w, http.StatusUnsupportedMediaType, &clients.RegError{Code: "invalid_request", Desc: "send Content-Type: application/json"})
			return nil
		}
	}
	parts, ok := pathSegments(r)
	h := &adminRequest{api: a, app: app, w: w, r: r, ctx: r.Context()}
	var err error
	switch {
	case !ok:
		err = &clients.RegError{Status: http.StatusNotFound, Code: "not_found", Desc: "no such oauth admin resource"}
	case len(parts) == 1 && parts[0] == "clients":
		err = h.methods(map[string]func() error{http.MethodGet: h.list, http.MethodPost: h.create})
	case len(parts) == 2 && parts[0] == "clients":
		h.id = parts[1]
		err = h.methods(map[string]func() error{http.MethodGet: h.show, http.MethodPatch: h.update, http.MethodDelete: h.remove})
	case len(parts) == 3 && parts[0] == "clients" && parts[2] == "secret":
		h.id = parts[1]
		err = h.methods(map[string]func() error{http.MethodPost: h.rotate})
	case len(parts) == 3 && parts[0] == "users" && parts[1] != "" && parts[2] == "revoke":
		h.id = parts[1]
		err = h.methods(map[string]func() error{http.MethodPost: h.revokeUser})
	default:
		err = &clients.RegError{Status: http.StatusNotFound, Code: "not_found", Desc: "no such oauth admin resource"}
	}
	if err != nil {
		h.fail(err)
	}
	return nil
}

// pathSegments splits the path below /oauth/ into its segments, each
// unescaped on its own, so a user ID or client_id holding '/' (sent as
// %2F) stays one segment. ok is false for a segment that does not unescape.
func pathSegments(r *http.Request) (parts []string, ok bool) {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/oauth/")
	parts = strings.Split(strings.TrimSuffix(raw, "/"), "/")
	for i, p := range parts {
		v, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = v
	}
	return parts, true
}

// needsJSONType reports whether a request that changes something must say
// Content-Type: application/json: when it has a body. A web page could
// send a bodyless POST without a preflight, but a browser says where the
// page came from in Origin (and Sec-Fetch-Mode), and Caddy's admin endpoint
// refuses every request from an origin it does not allow before it gets
// here.
func needsJSONType(r *http.Request) bool {
	return r.ContentLength != 0
}

// adminRequest is one admin API call.
type adminRequest struct {
	api *adminAPI
	app *App
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	id  string
}

func (h *adminRequest) methods(m map[string]func() error) error {
	if f, ok := m[h.r.Method]; ok {
		return f()
	}
	allow := make([]string, 0, len(m))
	for k := range m {
		allow = append(allow, k)
	}
	h.w.Header().Set("Allow", strings.Join(sortedUnion(allow), ", "))
	return &clients.RegError{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Desc: "method not allowed"}
}

func (h *adminRequest) rules() clients.Rules {
	return clients.Rules{Grants: authz.KnownGrants, Scopes: h.app.configuredScopes(), Operator: true}
}

// readMetadata decodes a JSON body of at most maxAdminBody bytes.
func (h *adminRequest) readMetadata() (*clients.Metadata, error) {
	body, err := io.ReadAll(http.MaxBytesReader(h.w, h.r.Body, maxAdminBody))
	if err != nil {
		return nil, clients.BadMetadata("the request body is too large or unreadable")
	}
	return clients.ParseMetadata(body)
}

func (h *adminRequest) list() error {
	reg := h.app.registry
	out := []*clients.Info{}
	for _, id := range reg.StaticIDs() {
		c, _ := reg.Static(id)
		out = append(out, clients.StaticInfoOf(c))
	}
	dyn, err := reg.List(h.ctx)
	if err != nil {
		return err
	}
	for _, c := range dyn {
		out = append(out, clients.InfoOf(c, ""))
	}
	writeAPIJSON(h.w, http.StatusOK, out)
	return nil
}

func (h *adminRequest) create() error {
	m, err := h.readMetadata()
	if err != nil {
		return err
	}
	c := new(clients.Client)
	if err := m.Apply(c, h.rules(), true); err != nil {
		return err
	}
	secret, err := h.app.registry.Create(h.ctx, c)
	if err != nil {
		return err
	}
	h.api.logger.Info("client registered", zap.String("client_id", c.ID), zap.String("owner", c.UserID))
	writeAPIJSON(h.w, http.StatusCreated, clients.InfoOf(c, secret))
	return nil
}

func (h *adminRequest) show() error {
	if c, ok := h.app.registry.Static(h.id); ok {
		writeAPIJSON(h.w, http.StatusOK, clients.StaticInfoOf(c))
		return nil
	}
	c, err := h.app.registry.Get(h.ctx, h.id)
	if err != nil {
		return err
	}
	writeAPIJSON(h.w, http.StatusOK, clients.InfoOf(c, ""))
	return nil
}

func (h *adminRequest) update() error {
	if _, ok := h.app.registry.Static(h.id); ok {
		return clients.ErrReadOnly
	}
	m, err := h.readMetadata()
	if err != nil {
		return err
	}
	c, err := h.app.registry.Update(h.ctx, h.id, func(c *clients.Client) error {
		return m.Apply(c, h.rules(), false)
	})
	if err != nil {
		return err
	}
	h.api.logger.Info("client updated", zap.String("client_id", c.ID))
	writeAPIJSON(h.w, http.StatusOK, clients.InfoOf(c, ""))
	return nil
}

func (h *adminRequest) rotate() error {
	c, secret, err := h.app.registry.RotateSecret(h.ctx, h.id)
	if err != nil {
		return err
	}
	h.api.logger.Info("client secret rotated", zap.String("client_id", c.ID))
	writeAPIJSON(h.w, http.StatusOK, clients.InfoOf(c, secret))
	return nil
}

func (h *adminRequest) remove() error {
	if err := h.app.registry.Delete(h.ctx, h.id); err != nil {
		return err
	}
	h.api.logger.Info("client deleted", zap.String("client_id", h.id))
	h.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *adminRequest) revokeUser() error {
	if err := authz.CheckUserID(h.id); err != nil {
		return clients.BadMetadata("user_id: %v", err)
	}
	if err := h.app.revokeUser(h.ctx, h.id); err != nil {
		return err
	}
	h.api.logger.Info("user's tokens, sessions and consents revoked", zap.String("user_id", h.id))
	writeAPIJSON(h.w, http.StatusOK, map[string]any{"user_id": h.id, "revoked": true})
	return nil
}

// fail answers an error as RFC 7591 §3.2.2 JSON.
func (h *adminRequest) fail(err error) {
	var re *clients.RegError
	switch {
	case errors.As(err, &re):
	case errors.Is(err, clients.ErrNotFound):
		re = &clients.RegError{Status: http.StatusNotFound, Code: "not_found", Desc: "no dynamic client has this client_id"}
	case errors.Is(err, clients.ErrExists):
		re = &clients.RegError{Status: http.StatusConflict, Code: "invalid_client_metadata", Desc: "client_id is already taken (or was used by a deleted client)"}
	case errors.Is(err, clients.ErrReadOnly):
		re = &clients.RegError{Status: http.StatusForbidden, Code: "read_only", Desc: "the client is defined in the config; change it there"}
	case clients.IsPublicClientError(err):
		re = clients.BadMetadata("the client has no secret to rotate (it is public, or authenticates by key or certificate)")
	case errors.Is(err, clients.ErrBusy):
		re = &clients.RegError{Status: http.StatusConflict, Code: "temporarily_unavailable", Desc: err.Error()}
	default:
		h.api.logger.Error("oauth admin request failed", zap.String("path", h.r.URL.Path), zap.Error(err))
		h.w.Header().Set("Retry-After", "1")
		re = &clients.RegError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Desc: "the client store cannot be reached"}
	}
	if re.Status == 0 {
		re.Status = http.StatusBadRequest
	}
	writeAPIJSON(h.w, re.Status, re)
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Online backup and restore of the running gateway's store, on the admin
// endpoint:
//
//	GET  /oauth/store/backup               the store as a snapshot (store/snapshot.go)
//	POST /oauth/store/restore[?force=true] load a snapshot into the store
//
// Both work on any store while the gateway serves. A restore goes into an
// empty store unless forced, and then merges.

// snapshotType is the media type of a snapshot: JSON lines.
const snapshotType = "application/x-ndjson"

// importBatch is how many records a restore or copy writes at a time.
const importBatch = 2000

// restoreIdle bounds the wait for the next part of a restore's body;
// the admin endpoint's own 10s limit on reading a whole request would cut
// off a large snapshot.
const restoreIdle = 30 * time.Second

// storeConsistency says how consistent a backend's snapshot is.
func storeConsistency(backend string) string {
	if backend == "redis" {
		return "per-key"
	}
	return "point-in-time"
}

// backendName is the module name of the store behind s.
func backendName(s store.Store) string {
	if is, ok := s.(*instrumentedStore); ok {
		return is.backend
	}
	return ""
}

// serveBackup streams a snapshot of the store as Export lists it.
func (a *adminAPI) serveBackup(w http.ResponseWriter, r *http.Request) error {
	app, ok := storeAdminApp(w, r, http.MethodGet)
	if !ok {
		return nil
	}
	backend := backendName(app.store)
	created := time.Now()
	// The answer starts with the first record, so a store that cannot be
	// read still gets an error status.
	var sw *store.SnapshotWriter
	begin := func() error {
		if sw != nil {
			return nil
		}
		w.Header().Set("Content-Type", snapshotType)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		var err error
		sw, err = store.NewSnapshotWriter(w, store.SnapshotHeader{Created: created, Backend: backend, Consistency: storeConsistency(backend)})
		return err
	}
	err := store.Export(r.Context(), app.store, func(rec store.Record) error {
		if err := begin(); err != nil {
			return err
		}
		return sw.Write(rec, time.Now())
	})
	if err == nil {
		if err = begin(); err == nil {
			err = sw.Close()
		}
	}
	if err != nil {
		a.logger.Error("store backup failed", zap.String("backend", backend), zap.Error(err))
		if sw == nil {
			storeAPIError(w, err)
		}
		// Past the header the snapshot just lacks its closing line, which
		// tells its reader it is incomplete.
		return nil
	}
	a.logger.Info("store backup taken", zap.String("backend", backend),
		zap.Int64("records", sw.Records()), zap.Duration("duration", time.Since(created)))
	return nil
}

// serveRestore loads a snapshot into the store, checking each line before
// it is written.
func (a *adminAPI) serveRestore(w http.ResponseWriter, r *http.Request) error {
	app, ok := storeAdminApp(w, r, http.MethodPost)
	if !ok {
		return nil
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != snapshotType {
		writeAPIJSON(w, http.StatusUnsupportedMediaType, &clients.RegError{Code: "invalid_request", Desc: "send the snapshot as Content-Type: " + snapshotType})
		return nil
	}
	force, err := parseForce(r.URL.Query()["force"])
	if err != nil {
		writeAPIJSON(w, http.StatusBadRequest, &clients.RegError{Code: "invalid_request", Desc: err.Error()})
		return nil
	}
	ctx := r.Context()
	body := &idleReader{r: r.Body, rc: http.NewResponseController(w)}
	sr, err := store.NewSnapshotReader(body)
	if err != nil {
		restoreFailed(w, err, 0)
		return nil
	}
	if !force {
		kind, err := storeContent(ctx, app.store)
		if err != nil {
			storeAPIError(w, err)
			return nil
		}
		if kind != "" {
			writeAPIJSON(w, http.StatusConflict, &clients.RegError{Code: "store_not_empty",
				Desc: "the store already holds records (" + kind + "…): restore into an empty store, or force a merge"})
			return nil
		}
	}
	im := store.NewImporter(app.store, importBatch)
	for {
		rec, err := sr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = im.Add(ctx, rec)
		}
		if err != nil {
			restoreFailed(w, err, im.Written)
			return nil
		}
	}
	if err := im.Flush(ctx); err != nil {
		restoreFailed(w, err, im.Written)
		return nil
	}
	// The snapshot may hold the tokens of users this config no longer
	// names, and its roster of users: revoke them as a start would.
	if err := app.revokeRemovedUsers(); err != nil {
		a.logger.Error("store restored, but revoking the users the config no longer names failed", zap.Error(err))
		storeAPIError(w, err)
		return nil
	}
	expired := sr.Expired + im.Expired
	a.logger.Info("store restored", zap.String("backend", backendName(app.store)), zap.Int64("records", im.Written),
		zap.Int64("expired", expired), zap.Time("snapshot_created", sr.Header.Created), zap.Bool("force", force))
	writeAPIJSON(w, http.StatusOK, map[string]any{
		"restored": im.Written, "expired": expired, "forced": force,
		"snapshot": map[string]any{"created": sr.Header.Created, "backend": sr.Header.Backend, "consistency": sr.Header.Consistency},
	})
	return nil
}

// storeAdminApp answers what every store route answers alike: a wrong
// method, and no oauth app running.
func storeAdminApp(w http.ResponseWriter, r *http.Request, method string) (*App, bool) {
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeAPIJSON(w, http.StatusMethodNotAllowed, &clients.RegError{Code: "invalid_request", Desc: "method not allowed"})
		return nil, false
	}
	app := runningApp()
	if app == nil || app.store == nil {
		w.Header().Set("Retry-After", "1")
		writeAPIJSON(w, http.StatusServiceUnavailable, &clients.RegError{Code: "temporarily_unavailable", Desc: "no oauth app is running"})
		return nil, false
	}
	return app, true
}

func parseForce(v []string) (bool, error) {
	switch {
	case len(v) == 0:
		return false, nil
	case len(v) > 1:
		return false, errors.New("force is given twice")
	}
	b, err := strconv.ParseBool(v[0])
	if err != nil {
		return false, errors.New("force must be true or false")
	}
	return b, nil
}

// storeAPIError answers a store that cannot be read or written.
func storeAPIError(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNoExport) {
		writeAPIJSON(w, http.StatusNotImplemented, &clients.RegError{Code: "unsupported", Desc: "this store cannot list its records"})
		return
	}
	w.Header().Set("Retry-After", "1")
	writeAPIJSON(w, http.StatusServiceUnavailable, &clients.RegError{Code: "temporarily_unavailable", Desc: "the store cannot be reached"})
}

// restoreFailed answers a restore that stopped after written records.
func restoreFailed(w http.ResponseWriter, err error, written int64) {
	partly := ""
	if written > 0 {
		partly = fmt.Sprintf(" (%d records were restored before it stopped: restore again with force once fixed)", written)
	}
	switch {
	case errors.Is(err, store.ErrSnapshot), errors.Is(err, store.ErrBadRecord), errors.Is(err, errRestoreBody):
		writeAPIJSON(w, http.StatusBadRequest, &clients.RegError{Code: "invalid_snapshot", Desc: err.Error() + partly})
	default:
		w.Header().Set("Retry-After", "1")
		writeAPIJSON(w, http.StatusServiceUnavailable, &clients.RegError{Code: "temporarily_unavailable", Desc: "the store cannot be reached" + partly})
	}
}

// errRestoreBody marks a restore whose body could not be read.
var errRestoreBody = errors.New("reading the snapshot failed")

// idleReader reads a request body, giving each read restoreIdle.
type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (ir *idleReader) Read(p []byte) (int, error) {
	_ = ir.rc.SetReadDeadline(time.Now().Add(restoreIdle)) // without support, the server's own limit stays
	n, err := ir.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: %v", errRestoreBody, err)
	}
	return n, err
}

// storeContent returns the kind of the first record of s that a restore
// or a copy could overwrite (its key up to the first colon), or "" when
// s holds none: every record but the rosters, the rate-limit and lockout
// counters, and the DPoP replay records and nonce key, which every
// gateway writes by itself.
func storeContent(ctx context.Context, s store.Store) (string, error) {
	errFound := errors.New("found")
	var kind string
	err := store.Export(ctx, s, func(rec store.Record) error {
		if !rec.Set && (authz.IsRoster(rec.Key) || limits.IsCounter(rec.Key) || dpop.IsReplayRecord(rec.Key) || rec.Key == dpop.NonceKeyRecord) {
			return nil
		}
		kind = rec.Key
		if i := strings.IndexByte(kind, ':'); i >= 0 {
			kind = kind[:i+1]
		} else if len(kind) > 16 {
			kind = kind[:16]
		}
		if rec.Set {
			kind = "set " + kind
		}
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		return "", err
	}
	return kind, nil
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
)
