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
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddyoauth/gateway/caddyoauth/clients"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oauth",
		Usage: "client add|list|show|update|rotate-secret|remove ... | user revoke <user_id> | store check|repair <path>",
		Short: "Manages the OAuth clients and grants of a running gateway, and checks its file store",
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
			p := "/oauth/users/" + url.PathEscape(args[0]) + "/revoke"
			return runAdmin(cmd, http.MethodPost, p, struct{}{}, func(w io.Writer, _ []byte) error {
				_, err := fmt.Fprintf(w, "every token, sign-in session and consent of user %s revoked\n", args[0])
				return err
			})
		},
	}
	client.AddCommand(add, list, show, update, rotate, remove)
	user.AddCommand(revoke)
	for _, c := range []*cobra.Command{add, list, show, update, rotate, remove, revoke} {
		c.SilenceUsage = true
		c.Flags().String("address", "", "The admin API's address, if not the default")
		c.Flags().StringP("config", "c", "", "Config file to read the admin address from, if --address is not used")
		c.Flags().StringP("adapter", "a", "", "Adapter of --config")
		c.Flags().Bool("json", false, "Print the admin API's JSON answer")
	}
}

func clientPath(id, suffix string) string {
	return "/oauth/clients/" + url.PathEscape(id) + suffix
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
		if c.ReadOnly {
			src = "config (read-only)"
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
	st := &cobra.Command{Use: "store", Short: "Checks and repairs a file store while no gateway has it open"}
	root.AddCommand(st)
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
