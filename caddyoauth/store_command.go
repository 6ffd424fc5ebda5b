package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddyoauth/gateway/caddyoauth/clients"
	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
)

// `caddy oauth store backup|restore|copy`: backup and restore go through
// the admin API of a running gateway (store_backup.go); copy opens two
// stores itself, with no gateway running on a file store.

// addStoreBackupCommands adds backup, restore and copy to the store
// command, which other store subcommands may share.
func addStoreBackupCommands(root *cobra.Command) {
	group := storeCommand(root)
	backup := &cobra.Command{
		Use:   "backup <file>",
		Short: "Writes a snapshot of the running gateway's store to a file (- for standard output)",
		Args:  cobra.ExactArgs(1),
		RunE:  runStoreBackup,
	}
	restore := &cobra.Command{
		Use:   "restore <file>",
		Short: "Loads a snapshot into the running gateway's store, which must be empty unless --force",
		Args:  cobra.ExactArgs(1),
		RunE:  runStoreRestore,
	}
	restore.Flags().Bool("force", false, "Merge into a store that already holds records (the snapshot's replace those of the same key)")
	for _, c := range []*cobra.Command{backup, restore} {
		c.Flags().String("address", "", "The admin API's address, if not the default")
		c.Flags().StringP("config", "c", "", "Config file to read the admin address from, if --address is not used")
		c.Flags().StringP("adapter", "a", "", "Adapter of --config")
	}
	cp := &cobra.Command{
		Use:   "copy --from <store> --to <store>",
		Short: "Copies every live record, with its remaining lifetime, from one store to another",
		Long: `
Copies every live record of one store into another, each with what is left
of its lifetime: access and refresh tokens, codes, sign-in sessions,
consents, dynamic clients and the generated signing keys. A store is
file:<path> or a Redis URL (redis://[user:pass@]host:port/db, rediss:// for
TLS) whose key prefix is ?prefix=<prefix> or --from-prefix/--to-prefix
(default oauth:); {env.NAME} placeholders are expanded. The target must
hold no records unless --force. Stop the gateways of a file store first:
the file cannot be shared.
`,
		Args: cobra.NoArgs,
		RunE: runStoreCopy,
	}
	cp.Flags().String("from", "", "The store to copy from: file:<path> or redis://...")
	cp.Flags().String("to", "", "The store to copy into: file:<path> or redis://...")
	cp.Flags().String("from-prefix", "", "Key prefix of a Redis source (default oauth:)")
	cp.Flags().String("to-prefix", "", "Key prefix of a Redis target (default oauth:)")
	cp.Flags().Bool("force", false, "Merge into a target that already holds records")
	for _, c := range []*cobra.Command{backup, restore, cp} {
		c.SilenceUsage = true
		c.Flags().Bool("json", false, "Print the result as JSON")
	}
	group.AddCommand(backup, restore, cp)
}

// storeCommand returns root's store command, adding it when missing.
func storeCommand(root *cobra.Command) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == "store" {
			return c
		}
	}
	c := &cobra.Command{Use: "store", Short: "Backs up, restores and moves the token store"}
	root.AddCommand(c)
	return c
}

func runStoreBackup(cmd *cobra.Command, args []string) error {
	addr, asJSON, err := storeAdminFlags(cmd)
	if err != nil {
		return err
	}
	dest := args[0]
	if dest == "" {
		return errors.New("name the file to write the snapshot to (- for standard output)")
	}
	report := cmd.OutOrStdout()
	out := report
	var tmp *os.File
	if dest == "-" {
		report = cmd.ErrOrStderr()
	} else {
		if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
			return fmt.Errorf("%s is a folder: name the snapshot file", dest)
		}
		// A snapshot holds the signing keys: it is created readable by its
		// owner only, and appears under its name only once complete.
		tmp, err = os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.tmp")
		if err != nil {
			return fmt.Errorf("cannot write the snapshot: %v", err)
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		out = tmp
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	resp, err := adminStream(ctx, addr, http.MethodGet, "/oauth/store/backup", "", nil, 0)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return adminAnswerError(cmd, asJSON, resp)
	}
	sr, err := store.NewSnapshotReader(io.TeeReader(resp.Body, out))
	if err == nil {
		for {
			if _, err = sr.Next(); err != nil {
				break
			}
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("the backup is incomplete (the gateway's log says why): %v", err)
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("writing the snapshot: %v", err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("writing the snapshot: %v", err)
		}
		if err := os.Rename(tmp.Name(), dest); err != nil {
			return fmt.Errorf("writing the snapshot: %v", err)
		}
		tmp = nil
	}
	h := sr.Header
	if asJSON {
		return writeJSON(report, map[string]any{"file": dest, "records": sr.Records(),
			"created": h.Created, "backend": h.Backend, "consistency": h.Consistency})
	}
	fmt.Fprintf(report, "snapshot of the %s store taken %s: %d records written to %s\n",
		h.Backend, h.Created.Format(time.RFC3339), sr.Records(), dest)
	if h.Consistency == "per-key" {
		fmt.Fprintln(report, "Each record is as it was when read; for a copy of one instant, use Redis' BGSAVE.")
	}
	return nil
}

func runStoreRestore(cmd *cobra.Command, args []string) error {
	addr, asJSON, err := storeAdminFlags(cmd)
	if err != nil {
		return err
	}
	force, _ := cmd.Flags().GetBool("force")
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("cannot read the snapshot: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read the snapshot: %v", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a folder: name the snapshot file", args[0])
	}
	// Check the whole file before anything reaches the store.
	sr, err := store.NewSnapshotReader(f)
	for err == nil {
		_, err = sr.Next()
	}
	if !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %v", args[0], err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	path := "/oauth/store/restore"
	if force {
		path += "?force=true"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	resp, err := adminStream(ctx, addr, http.MethodPost, path, snapshotType, f, fi.Size())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return adminAnswerError(cmd, asJSON, resp)
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if asJSON {
		_, err := cmd.OutOrStdout().Write(answer)
		return err
	}
	var r struct {
		Restored, Expired int64
	}
	if err := json.Unmarshal(answer, &r); err != nil {
		return fmt.Errorf("unexpected answer: %v", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%d records restored from the snapshot taken %s", r.Restored, sr.Header.Created.Format(time.RFC3339))
	if r.Expired > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "; %d had expired since and were left out", r.Expired)
	}
	fmt.Fprintln(cmd.OutOrStdout())
	return nil
}

func runStoreCopy(cmd *cobra.Command, _ []string) (err error) {
	f := cmd.Flags()
	fromSpec, _ := f.GetString("from")
	toSpec, _ := f.GetString("to")
	fromPrefix, _ := f.GetString("from-prefix")
	toPrefix, _ := f.GetString("to-prefix")
	force, _ := f.GetBool("force")
	asJSON, _ := f.GetBool("json")
	if fromSpec == "" || toSpec == "" {
		return errors.New("name both stores: --from <store> --to <store> (file:<path> or redis://host:port/db)")
	}
	src, err := parseStoreSpec(fromSpec, fromPrefix, f.Changed("from-prefix"), "--from-prefix")
	if err != nil {
		return fmt.Errorf("--from: %v", err)
	}
	dst, err := parseStoreSpec(toSpec, toPrefix, f.Changed("to-prefix"), "--to-prefix")
	if err != nil {
		return fmt.Errorf("--to: %v", err)
	}
	if src.overlaps(dst) {
		return errors.New("--from and --to name the same store (or key prefixes of one another on one Redis database)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	from, _, err := src.open(false)
	if err != nil {
		return err
	}
	defer from.Close()
	to, created, err := dst.open(true)
	if err != nil {
		return err
	}
	var im *store.Importer
	defer func() {
		to.Close()
		if err != nil && created && im != nil && im.Written == 0 {
			os.Remove(dst.path) // a failed copy leaves no empty store behind
		}
	}()
	if !force {
		kind, err := storeContent(ctx, to)
		if err != nil {
			return fmt.Errorf("reading the %s: %v", dst.desc, err)
		}
		if kind != "" {
			return fmt.Errorf("the %s already holds records (%s…): copy into an empty store, or pass --force to merge", dst.desc, kind)
		}
	}
	var read int64
	im = store.NewImporter(to, importBatch)
	err = store.Export(ctx, from, func(rec store.Record) error {
		read++
		return im.Add(ctx, rec)
	})
	if err == nil {
		err = im.Flush(ctx)
	}
	if err != nil {
		return fmt.Errorf("copy stopped after %d records: %v", im.Written, err)
	}
	if read == 0 {
		return fmt.Errorf("the %s holds no records: check its path or key prefix", src.desc)
	}
	if asJSON {
		return writeJSON(cmd.OutOrStdout(), map[string]any{"from": src.desc, "to": dst.desc,
			"records": im.Written, "expired": im.Expired})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%d records copied from the %s to the %s", im.Written, src.desc, dst.desc)
	if im.Expired > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "; %d expired during the copy and were left out", im.Expired)
	}
	fmt.Fprintln(cmd.OutOrStdout())
	return nil
}

// storeSpec is a store named on the command line.
type storeSpec struct {
	path   string // a file store's absolute path, else ""
	redis  redisstore.Options
	opt    string // a Redis store's servers and database, to compare specs
	prefix string
	desc   string // for messages: never a password
}

// parseStoreSpec reads file:<path> or a Redis URL, whose key prefix is
// its prefix query parameter or the flag named flagName.
func parseStoreSpec(spec, prefix string, prefixGiven bool, flagName string) (*storeSpec, error) {
	spec = caddy.NewReplacer().ReplaceKnown(spec, "")
	if rest, ok := strings.CutPrefix(spec, "file:"); ok {
		if prefixGiven {
			return nil, fmt.Errorf("%s applies to a Redis store only", flagName)
		}
		if strings.HasPrefix(rest, "//") {
			u, err := url.Parse(spec)
			if err != nil || (u.Host != "" && u.Host != "localhost") {
				return nil, errors.New("write a file store as file:<path> or file:///<absolute path>")
			}
			rest = u.Path
		}
		if rest == "" {
			return nil, errors.New("file: needs the store file's path")
		}
		abs, err := filepath.Abs(rest)
		if err != nil {
			return nil, err
		}
		return &storeSpec{path: abs, desc: "file store " + abs}, nil
	}
	scheme, _, _ := strings.Cut(spec, "://")
	switch scheme {
	case "redis", "rediss", "unix":
	default:
		return nil, errors.New("a store is file:<path> or a Redis URL (redis://host:port/db, rediss:// for TLS)")
	}
	u, err := url.Parse(spec)
	if err != nil {
		return nil, errors.New("invalid Redis URL (escape '@', '/' and ':' in a password)")
	}
	q := u.Query()
	if v, ok := q["prefix"]; ok {
		if prefixGiven || len(v) > 1 {
			return nil, fmt.Errorf("the key prefix is given twice (prefix= and %s)", flagName)
		}
		prefix, prefixGiven = v[0], true
		q.Del("prefix")
		u.RawQuery = q.Encode()
	}
	if prefixGiven && prefix == "" {
		return nil, errors.New("the key prefix must not be empty")
	}
	if prefix == "" {
		prefix = redisstore.DefaultKeyPrefix
	}
	o := redisstore.Options{URL: u.String(), KeyPrefix: prefix}
	opt, err := o.ClientOption()
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("%s/%d", redisstore.Describe(opt), opt.SelectDB)
	return &storeSpec{redis: o, opt: where, prefix: prefix,
		desc: fmt.Sprintf("Redis store at %s (key prefix %s)", where, prefix)}, nil
}

// overlaps reports whether s and t are one store, or share keys: a copy
// would then read what it writes.
func (s *storeSpec) overlaps(t *storeSpec) bool {
	if s.path != "" || t.path != "" {
		return s.path == t.path || sameFile(s.path, t.path)
	}
	return s.opt == t.opt && (strings.HasPrefix(s.prefix, t.prefix) || strings.HasPrefix(t.prefix, s.prefix))
}

func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// open opens the store. A file store that does not exist is created
// (created) only as a target, readable by its owner only.
func (s *storeSpec) open(create bool) (st store.Store, created bool, err error) {
	if s.path == "" {
		opt, err := s.redis.ClientOption()
		if err != nil {
			return nil, false, err
		}
		rs, err := redisstore.Open(opt, s.prefix, 0)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %s", s.desc, redisstore.Scrub(err.Error(), opt.Password))
		}
		return rs, false, nil
	}
	switch fi, err := os.Stat(s.path); {
	case err == nil && fi.IsDir():
		return nil, false, fmt.Errorf("%s is a folder, not a store file", s.path)
	case errors.Is(err, os.ErrNotExist) && !create:
		return nil, false, fmt.Errorf("there is no file store at %s", s.path)
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
			return nil, false, err
		}
		nf, err := os.OpenFile(s.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, false, err
		}
		nf.Close()
		created = true
	case err != nil:
		return nil, false, err
	}
	db, err := filestore.Open(s.path)
	if err != nil {
		if created {
			os.Remove(s.path)
		}
		return nil, false, fmt.Errorf("%s: %v", s.desc, err)
	}
	return db, created, nil
}

// storeAdminFlags reads the flags of the commands that call the admin
// API.
func storeAdminFlags(cmd *cobra.Command) (addr string, asJSON bool, err error) {
	f := cmd.Flags()
	addr, _ = f.GetString("address")
	cfg, _ := f.GetString("config")
	adapter, _ := f.GetString("adapter")
	asJSON, _ = f.GetBool("json")
	addr, err = caddycmd.DetermineAdminAPIAddress(addr, nil, cfg, adapter)
	return addr, asJSON, err
}

// adminStream sends one request to the admin endpoint at addr, as
// adminCall does, but leaves the answer's body to the caller and bounds
// only the connection, not a long transfer.
func adminStream(ctx context.Context, addr, method, path, contentType string, body io.Reader, size int64) (*http.Response, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil || na.PortRangeSize() > 1 {
		return nil, fmt.Errorf("invalid admin address %s", addr)
	}
	origin := "http://" + na.JoinHostPort(0)
	local := na.IsUnixNetwork() || na.IsFdNetwork()
	if local {
		origin = "http://127.0.0.1"
	}
	req, err := http.NewRequestWithContext(ctx, method, origin+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	if !local {
		req.Header.Set("Origin", origin)
	}
	client := http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: 10 * time.Second}
			return d.DialContext(ctx, na.Network, na.JoinHostPort(0))
		},
	}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the admin API at %s: %v", addr, err)
	}
	return resp, nil
}

// adminAnswerError turns an error answer into the command's error, as
// runAdmin does; with --json the answer is printed too.
func adminAnswerError(cmd *cobra.Command, asJSON bool, resp *http.Response) error {
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if asJSON {
		_, _ = cmd.OutOrStdout().Write(answer)
		cmd.SilenceErrors = true
	}
	var e clients.RegError
	if json.Unmarshal(answer, &e) == nil && e.Code != "" {
		return fmt.Errorf("HTTP %d: %s: %s", resp.StatusCode, e.Code, e.Desc)
	}
	return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(answer)))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
