package caddyoauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clients"
	"github.com/caddyoauth/gateway/caddyoauth/limits"
	"github.com/caddyoauth/gateway/caddyoauth/store"
)

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
// s holds none: every record but the rosters and the rate-limit and
// lockout counters, which every gateway writes by itself.
func storeContent(ctx context.Context, s store.Store) (string, error) {
	errFound := errors.New("found")
	var kind string
	err := store.Export(ctx, s, func(rec store.Record) error {
		if !rec.Set && (authz.IsRoster(rec.Key) || limits.IsCounter(rec.Key)) {
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
