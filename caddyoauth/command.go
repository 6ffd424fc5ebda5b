package caddyoauth

import (
	"bytes"
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
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddyoauth/gateway/caddyoauth/clients"
	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oauth",
		Usage: "client add|list|show|update|rotate-secret|remove ... | user revoke <user_id> | store check|repair|backup|restore|copy ...",
		Short: "Manages the OAuth clients, grants and token store of a gateway",
		Long: `
Manages OAuth clients and user grants through the admin API of a running
Caddy with the oauth app. Every subcommand finds the admin endpoint like
'caddy reload' does: --address, else the admin address of --config, else
localhost:2019.

  caddy oauth client add --name <name> [--redirect-uri <uri>]... [--grant <grant>]...
                         [--scope "<scope> ..."] [--public] [--user <owner>]
                         [--consent remember|always|skip] [--id <client_id>]
  caddy oauth client list
  caddy oauth client show <client_id>
  caddy oauth client update <client_id> [the flags of add, but --public and --id]
  caddy oauth client rotate-secret <client_id>
  caddy oauth client remove <client_id>
  caddy oauth user revoke <user_id>
  caddy oauth store backup <file>|-
  caddy oauth store restore <file> [--force]
  caddy oauth store copy --from <store> --to <store> [--from-prefix <p>] [--to-prefix <p>] [--force]

store copy works offline, on two stores it opens itself (see its --help).

A new secret is printed once, by add and rotate-secret; the gateway keeps
only its hash. --json prints the admin API's JSON answer instead of a table.

  caddy oauth store check <path>
  caddy oauth store repair <path>

The store subcommands read a file store directly, while no gateway has it
open: check reports damage (exit status 1 when damaged); repair keeps every
readable record and moves the original to <path>.damaged-<UTC time>.
`,
		CobraFunc: buildOAuthCommand,
	})
}

func buildOAuthCommand(root *cobra.Command) {
	client := &cobra.Command{Use: "client", Short: "Manages OAuth clients"}
	user := &cobra.Command{Use: "user", Short: "Manages users' grants"}
	root.AddCommand(client, user)
	addStoreCommands(root)

	add := &cobra.Command{
		Use: "add", Short: "Registers a client and prints its secret once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m := metadataFromFlags(cmd)
			if pub, _ := cmd.Flags().GetBool("public"); pub {
				none := clients.AuthMethodNone
				m.TokenEndpointAuthMethod = &none
			}
			if id, _ := cmd.Flags().GetString("id"); cmd.Flags().Changed("id") {
				m.ClientID = &id
			}
			return runAdmin(cmd, http.MethodPost, "/oauth/clients", m, printClient)
		},
	}
	addMetadataFlags(add)
	add.Flags().Bool("public", false, "A public client (no secret, token_endpoint_auth_method none)")
	add.Flags().String("id", "", "Choose the client_id instead of a generated one")

	update := &cobra.Command{
		Use: "update <client_id>", Short: "Changes the given fields of a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, http.MethodPatch, clientPath(args[0], ""), metadataFromFlags(cmd), printClient)
		},
	}
	addMetadataFlags(update)

	list := &cobra.Command{
		Use: "list", Short: "Lists clients, static ones marked read-only", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmin(cmd, http.MethodGet, "/oauth/clients", nil, printClientTable)
		},
	}
	show := &cobra.Command{
		Use: "show <client_id>", Short: "Shows a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, http.MethodGet, clientPath(args[0], ""), nil, printClient)
		},
	}
	rotate := &cobra.Command{
		Use: "rotate-secret <client_id>", Short: "Replaces a client's secret and prints the new one once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, http.MethodPost, clientPath(args[0], "/secret"), struct{}{}, printClient)
		},
	}
	remove := &cobra.Command{
		Use: "remove <client_id>", Short: "Deletes a client; its tokens stop working", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, http.MethodDelete, clientPath(args[0], ""), nil, func(w io.Writer, _ []byte) error {
				_, err := fmt.Fprintf(w, "client %s removed\n", args[0])
				return err
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke <user_id>", Short: "Ends every token, sign-in session and consent of a user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/oauth/users/" + pathSegment(args[0]) + "/revoke"
			return runAdmin(cmd, http.MethodPost, p, struct{}{}, func(w io.Writer, _ []byte) error {
				_, err := fmt.Fprintf(w, "every token, sign-in session and consent of user %s revoked\n", args[0])
				return err
			})
		},
	}
	client.AddCommand(add, list, show, update, rotate, remove)
	user.AddCommand(revoke)
	addStoreBackupCommands(root)
	for _, c := range []*cobra.Command{add, list, show, update, rotate, remove, revoke} {
		c.SilenceUsage = true
		c.Flags().String("address", "", "The admin API's address, if not the default")
		c.Flags().StringP("config", "c", "", "Config file to read the admin address from, if --address is not used")
		c.Flags().StringP("adapter", "a", "", "Adapter of --config")
		c.Flags().Bool("json", false, "Print the admin API's JSON answer")
	}
}

func clientPath(id, suffix string) string {
	return "/oauth/clients/" + pathSegment(id) + suffix
}

// pathSegment escapes an ID as one path segment of the admin API. Dots are
// escaped too when they make the whole segment, which an HTTP server would
// otherwise clean away as "." or "..".
func pathSegment(id string) string {
	s := url.PathEscape(id)
	if s == "." || s == ".." {
		s = strings.ReplaceAll(s, ".", "%2E")
	}
	return s
}

func addMetadataFlags(c *cobra.Command) {
	f := c.Flags()
	f.String("name", "", "Name shown to people on the consent screen")
	f.StringArray("redirect-uri", nil, "A redirect URI (repeatable); replaces all on update")
	f.StringArray("grant", nil, "A grant type (repeatable): authorization_code, refresh_token, client_credentials, password")
	f.String("scope", "", `Space-separated scopes, e.g. "read write"`)
	f.String("user", "", "The owner's user_id (client_credentials tokens act as this user)")
	f.String("consent", "", "remember (default): ask each user once; always: ask every time; skip: a trusted first-party client")
}

// metadataFromFlags sends only the flags given, so update changes just
// those fields.
func metadataFromFlags(cmd *cobra.Command) *clients.Metadata {
	f := cmd.Flags()
	m := new(clients.Metadata)
	str := func(name string, dst **string) {
		if f.Changed(name) {
			v, _ := f.GetString(name)
			*dst = &v
		}
	}
	list := func(name string, dst **[]string) {
		if f.Changed(name) {
			v, _ := f.GetStringArray(name)
			*dst = &v
		}
	}
	str("name", &m.ClientName)
	str("scope", &m.Scope)
	str("user", &m.UserID)
	str("consent", &m.Consent)
	list("redirect-uri", &m.RedirectURIs)
	list("grant", &m.GrantTypes)
	return m
}

// runAdmin calls the admin API and prints its answer: raw JSON with
// --json, else through pretty. An error answer fails the command.
func runAdmin(cmd *cobra.Command, method, path string, body any, pretty func(io.Writer, []byte) error) error {
	f := cmd.Flags()
	addr, _ := f.GetString("address")
	cfg, _ := f.GetString("config")
	adapter, _ := f.GetString("adapter")
	asJSON, _ := f.GetBool("json")
	addr, err := caddycmd.DetermineAdminAPIAddress(addr, nil, cfg, adapter)
	if err != nil {
		return err
	}
	status, answer, err := adminCall(addr, method, path, body)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if status >= 400 {
		if asJSON {
			_, _ = out.Write(answer)
			cmd.SilenceErrors = true
		}
		var e clients.RegError
		if json.Unmarshal(answer, &e) == nil && e.Code != "" {
			return fmt.Errorf("HTTP %d: %s: %s", status, e.Code, e.Desc)
		}
		return fmt.Errorf("HTTP %d: %s", status, bytes.TrimSpace(answer))
	}
	if asJSON {
		if len(answer) == 0 {
			answer = []byte("{}\n")
		}
		_, err := out.Write(answer)
		return err
	}
	return pretty(out, answer)
}

// adminCall sends one request to the admin endpoint at addr (a Caddy
// network address: host:port or unix/path) as `caddy reload` does, with an
// Origin the admin endpoint accepts.
func adminCall(addr, method, path string, body any) (int, []byte, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil || na.PortRangeSize() > 1 {
		return 0, nil, fmt.Errorf("invalid admin address %s", addr)
	}
	origin := "http://" + na.JoinHostPort(0)
	if na.IsUnixNetwork() || na.IsFdNetwork() {
		origin = "http://127.0.0.1"
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, origin+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if !na.IsUnixNetwork() && !na.IsFdNetwork() {
		req.Header.Set("Origin", origin)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, na.Network, na.JoinHostPort(0))
			},
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("reaching the admin API at %s: %v", addr, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, answer, err
}

func printClient(w io.Writer, answer []byte) error {
	var c clients.Info
	if err := json.Unmarshal(answer, &c); err != nil {
		return fmt.Errorf("unexpected answer: %v", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("client_id:", c.ClientID)
	row("name:", c.ClientName)
	row("type:", clientType(&c))
	row("owner:", c.UserID)
	row("redirect_uris:", strings.Join(c.RedirectURIs, " "))
	row("grants:", strings.Join(c.GrantTypes, " "))
	row("scope:", c.Scope)
	row("consent:", c.Consent)
	row("registered_by:", c.RegisteredBy)
	if c.ClientIDIssuedAt != 0 {
		row("created:", time.Unix(c.ClientIDIssuedAt, 0).UTC().Format(time.RFC3339))
	}
	if c.UpdatedAt != 0 {
		row("updated:", time.Unix(c.UpdatedAt, 0).UTC().Format(time.RFC3339))
	}
	if c.ReadOnly {
		row("read_only:", "yes (defined in the config)")
	}
	if c.ClientSecret != "" {
		row("client_secret:", c.ClientSecret)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c.ClientSecret != "" {
		_, err := fmt.Fprintln(w, "\nStore the secret now: it is not shown again.")
		return err
	}
	return nil
}

func printClientTable(w io.Writer, answer []byte) error {
	var list []clients.Info
	if err := json.Unmarshal(answer, &list); err != nil {
		return fmt.Errorf("unexpected answer: %v", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tNAME\tTYPE\tOWNER\tGRANTS\tSCOPE\tSOURCE")
	for i := range list {
		c := &list[i]
		src := "dynamic"
		switch {
		case c.ReadOnly:
			src = "config (read-only)"
		case c.RegisteredBy == clients.ByRegistration:
			src = "registered itself"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ClientID, dash(c.ClientName), clientType(c),
			dash(c.UserID), dash(strings.Join(c.GrantTypes, ",")), dash(c.Scope), src)
	}
	return tw.Flush()
}

func clientType(c *clients.Info) string {
	if c.TokenEndpointAuthMethod == clients.AuthMethodNone {
		return "public"
	}
	return "confidential"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// The store subcommands work on a file store's file, not through the
// admin API: a gateway that refuses to start on a damaged file has no API
// to call. They take the file's lock, so they refuse to run while a
// gateway has it open. They print offsets and counts, never a record.

func addStoreCommands(root *cobra.Command) {
	st := storeCommand(root)
	check := &cobra.Command{
		Use: "check <path>", Short: "Reports damage in a file store (exit status 1 when damaged)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			rep, err := filestore.Check(path)
			if err != nil {
				return storeCommandError(cmd, path, err)
			}
			if asJSON(cmd) {
				if err := writeJSON(cmd.OutOrStdout(), struct {
					*filestore.Report
					Damaged bool `json:"damaged"`
				}{rep, rep.Damaged()}); err != nil {
					return err
				}
			} else {
				printReport(cmd.OutOrStdout(), rep)
			}
			if rep.Damaged() {
				if asJSON(cmd) {
					cmd.SilenceErrors = true
				}
				return fmt.Errorf("%s is damaged", path)
			}
			return nil
		},
	}
	repair := &cobra.Command{
		Use: "repair <path>", Short: "Rewrites a file store with every readable record, keeping the original beside it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			res, err := filestore.Repair(path, time.Now())
			if err != nil {
				return storeCommandError(cmd, path, err)
			}
			if asJSON(cmd) {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			printRepair(cmd.OutOrStdout(), res)
			return nil
		},
	}
	st.AddCommand(check, repair)
	for _, c := range []*cobra.Command{check, repair} {
		c.SilenceUsage = true
		c.Flags().Bool("json", false, "Print the result as JSON")
	}
}

func asJSON(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("json")
	return v
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// storeCommandError words a failure to read or lock the file; with --json
// it is printed as {"path", "error", "pid"} too.
func storeCommandError(cmd *cobra.Command, path string, err error) error {
	var locked *filestore.LockedError
	if errors.As(err, &locked) {
		holder := "another process"
		if locked.PID > 0 {
			holder = fmt.Sprintf("another process (PID %d)", locked.PID)
		}
		err = fmt.Errorf("%s is in use: %s has it open, most likely a running gateway; stop it first, then run this again", path, holder)
	}
	if asJSON(cmd) {
		out := struct {
			Path  string `json:"path"`
			Error string `json:"error"`
			PID   int    `json:"pid,omitempty"`
		}{Path: path, Error: err.Error()}
		if locked != nil {
			out.PID = locked.PID
		}
		_ = writeJSON(cmd.OutOrStdout(), out)
		cmd.SilenceErrors = true
	}
	return err
}

func printReport(w io.Writer, rep *filestore.Report) {
	if rep.Damaged() {
		fmt.Fprintf(w, "%s: DAMAGED: %d whole records readable in %d bytes\n", rep.Path, rep.Records, rep.Size)
	} else {
		fmt.Fprintf(w, "%s: sound: %d records in %d bytes\n", rep.Path, rep.Records, rep.Size)
	}
	for _, d := range rep.Damage {
		fmt.Fprintf(w, "  at byte %d: %d bytes unreadable (%s), %s\n", d.Offset, d.Length, d.Reason, recordCount(d.Records))
	}
	if t := rep.PartialTail; t != nil {
		fmt.Fprintf(w, "  at byte %d: a record cut short at the end (%d bytes), left by an interrupted write; the gateway cuts it off when it starts\n", t.Offset, t.Length)
	}
	if rep.Damaged() {
		fmt.Fprintf(w, "Repair it, while no gateway runs on it, with:\n  caddy oauth store repair %s\n", rep.Path)
	}
}

func recordCount(n int) string {
	switch n {
	case 0:
		return "no record"
	case 1:
		return "1 record"
	}
	return fmt.Sprintf("about %d records", n)
}

func printRepair(w io.Writer, res *filestore.RepairResult) {
	if !res.Repaired {
		fmt.Fprintf(w, "%s: nothing to repair: %d records in %d bytes, none damaged\n", res.Path, res.Records, res.Size)
		return
	}
	fmt.Fprintf(w, "%s repaired: kept %d records, dropped %d (%d bytes)\n", res.Path, res.Kept, res.Dropped, res.DroppedBytes)
	for _, d := range res.Damage {
		fmt.Fprintf(w, "  dropped at byte %d: %d bytes (%s), %s\n", d.Offset, d.Length, d.Reason, recordCount(d.Records))
	}
	if t := res.PartialTail; t != nil {
		fmt.Fprintf(w, "  dropped at byte %d: a record cut short at the end (%d bytes)\n", t.Offset, t.Length)
	}
	if res.DeletedKeys > 0 {
		fmt.Fprintf(w, "  %d key(s) whose record was damaged are deleted, not left at an earlier value: tokens among them must be issued again\n", res.DeletedKeys)
	}
	fmt.Fprintf(w, "The original is kept as %s\n", res.MovedTo)
}

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
	c := &cobra.Command{Use: "store", Short: "Checks, repairs, backs up, restores and moves the token store"}
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
