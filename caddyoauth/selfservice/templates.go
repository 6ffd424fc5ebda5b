package selfservice

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"
)

// pages are the templates of the self-service pages. html/template escapes every value
// by context; the pages load nothing from elsewhere and run no script, so
// the Content-Security-Policy can forbid both.
var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"join": strings.Join,
}).Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · OAuth apps</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #eef;vertical-align:top}
code{background:#f3f4f8;padding:.1rem .3rem;border-radius:3px;word-break:break-all}
label{display:block;margin:.6rem 0 .2rem;font-weight:600}input[type=text],input[type=password],textarea{width:100%;max-width:32rem;padding:.35rem;font:inherit}
.inline label{display:inline;font-weight:normal;margin-right:1rem}
button{font:inherit;padding:.35rem .9rem;border:1px solid #46b;border-radius:4px;background:#46b;color:#fff;cursor:pointer}
button.danger{background:#b33;border-color:#b33}form.row{display:inline}
.error{background:#fde8e8;border:1px solid #e99;padding:.5rem .8rem;border-radius:4px}
.secret{background:#fff7d6;border:1px solid #e5c34a;padding:.8rem;border-radius:4px}
header{display:flex;justify-content:space-between;align-items:center}
</style></head><body>{{end}}

{{define "userbar"}}<header><h1>OAuth apps</h1>{{if .User}}<form class="row" method="post" action="/oauth/apps/logout">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">Signed in as <strong id="user">{{.User}}</strong> <button type="submit">Sign out</button></form>{{end}}</header>{{end}}

{{define "fields"}}
<label for="client_name">Name</label><input type="text" id="client_name" name="client_name" value="{{.Form.Name}}" maxlength="200" required>
<label for="redirect_uris">Redirect URIs (one per line)</label><textarea id="redirect_uris" name="redirect_uris" rows="3">{{.Form.RedirectURIs}}</textarea>
<label>Grant types</label><div class="inline">{{$f := .Form}}{{range .AllGrants}}<label><input type="checkbox" name="grant_types" value="{{.}}" {{if $f.Has $f.Grants .}}checked{{end}}> {{.}}</label>{{end}}</div>
{{if .AllScopes}}<label>Scopes</label><div class="inline">{{range .AllScopes}}<label><input type="checkbox" name="scope" value="{{.}}" {{if $f.Has $f.Scopes .}}checked{{end}}> {{.}}</label>{{end}}</div>{{end}}
{{end}}

{{define "login"}}{{template "head" "Sign in"}}{{template "userbar" .}}
<h2>Sign in</h2>{{with .Error}}<p class="error" role="alert">{{.}}</p>{{end}}
<form method="post" action="/oauth/apps/login?next={{.Next}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label for="username">Username</label><input type="text" id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<p><button type="submit" id="signin">Sign in</button></p></form></body></html>{{end}}

{{define "index"}}{{template "head" "Your apps"}}{{template "userbar" .}}
<h2>Your apps</h2>
{{if .Clients}}<table id="apps"><tr><th>Name</th><th>Client ID</th><th>Type</th><th>Redirect URIs</th><th></th></tr>
{{range .Clients}}<tr><td>{{.Name}}</td><td><code>{{.ID}}</code></td><td>{{if .Public}}public{{else}}confidential{{end}}</td><td>{{join .RedirectURIs " "}}</td>
<td><a href="/oauth/apps/{{.ID}}">Edit</a></td></tr>{{end}}</table>
{{else}}<p id="no-apps">You have no apps yet.</p>{{end}}

<h2>New app</h2>{{with .FormError}}<p class="error" role="alert">{{.}}</p>{{end}}
<form method="post" action="/oauth/apps/new" id="new-app">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
{{template "fields" .}}
<div class="inline"><label><input type="checkbox" name="public" {{if .Form.Public}}checked{{end}}> Public app (no secret: single-page or mobile app using PKCE)</label></div>
<p><button type="submit" id="create">Create app</button></p></form>

<h2>Apps you authorized</h2>
{{if .Authorized}}<table id="authorized"><tr><th>App</th><th>Client ID</th><th>Access</th><th>Since</th><th></th></tr>
{{range .Authorized}}<tr><td>{{.Name}}</td><td><code>{{.ClientID}}</code></td><td>{{.Scope}}</td><td>{{if not .Since.IsZero}}{{.Since.UTC.Format "2006-01-02 15:04 UTC"}}{{end}}</td>
<td><form class="row" method="post" action="/oauth/apps/authorized/{{.ClientID}}/revoke"><input type="hidden" name="csrf_token" value="{{$.CSRF}}">
<button type="submit" class="danger" data-client="{{.ClientID}}">Revoke</button></form></td></tr>{{end}}</table>
{{else}}<p id="no-authorized">No app has access to your account.</p>{{end}}
</body></html>{{end}}

{{define "edit"}}{{template "head" "Edit app"}}{{template "userbar" .}}
<p><a href="/oauth/apps">← Your apps</a></p>
<h2>{{.Client.Name}} <code>{{.Client.ID}}</code></h2>{{with .FormError}}<p class="error" role="alert">{{.}}</p>{{end}}
<form method="post" action="/oauth/apps/{{.Client.ID}}" id="edit-app">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
{{template "fields" .}}
<p><button type="submit" id="save">Save</button></p></form>
{{if not .Client.Public}}<h2>Secret</h2><form method="post" action="/oauth/apps/{{.Client.ID}}/secret">
<input type="hidden" name="csrf_token" value="{{.CSRF}}"><p>A new secret replaces the current one at once.</p><button type="submit" id="rotate">Rotate secret</button></form>{{end}}
<h2>Delete</h2><form method="post" action="/oauth/apps/{{.Client.ID}}/delete">
<input type="hidden" name="csrf_token" value="{{.CSRF}}"><p>The app and every token it holds stop working.</p><button type="submit" class="danger" id="delete">Delete app</button></form>
</body></html>{{end}}

{{define "secret"}}{{template "head" "App credentials"}}{{template "userbar" .}}
<h2>{{.Message}}</h2>
<p>Client ID: <code id="client-id">{{.Client.ID}}</code></p>
{{if .Secret}}<div class="secret"><p>Client secret: <code id="client-secret">{{.Secret}}</code></p>
<p><strong>Copy it now: it is shown only this once.</strong> The gateway keeps only a hash of it.</p></div>{{end}}
<p><a href="/oauth/apps" id="back">Back to your apps</a></p></body></html>{{end}}

{{define "error"}}{{template "head" "Error"}}<h1>OAuth apps</h1><p class="error" role="alert">{{.}}</p><p><a href="/oauth/apps">Back to your apps</a></p></body></html>{{end}}
`))

func renderPage(w http.ResponseWriter, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

func renderError(w http.ResponseWriter, status int, msg string) error {
	return renderPage(w, status, "error", msg)
}
