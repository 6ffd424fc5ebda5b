package caddyoauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddyoauth/gateway/caddyoauth/clients"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oauth",
		Usage: "client add|list|show|update|rotate-secret|remove ... | user revoke <user_id> | store backup|restore|copy ...",
		Short: "Manages the OAuth clients and grants of a running gateway",
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
`,
		CobraFunc: buildOAuthCommand,
	})
}

func buildOAuthCommand(root *cobra.Command) {
	client := &cobra.Command{Use: "client", Short: "Manages OAuth clients"}
	user := &cobra.Command{Use: "user", Short: "Manages users' grants"}
	root.AddCommand(client, user)

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
