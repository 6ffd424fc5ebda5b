package caddyoauth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// readme returns the repository's README.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// caddyfileOptions returns every option name the Caddyfile grammar parses:
// the case labels of the switches over a subdirective's name in
// caddyfile.go and stores.go, with the line of each.
func caddyfileOptions(t *testing.T) map[string]string {
	t.Helper()
	opts := map[string]string{}
	fset := token.NewFileSet()
	for _, file := range []string{"caddyfile.go", "stores.go"} {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sw, ok := n.(*ast.SwitchStmt)
			if !ok {
				return true
			}
			// The grammar reads a subdirective into name (or sub, in a
			// store block) and switches over it; other switches are over
			// values (on|off, required|optional).
			if id, ok := sw.Tag.(*ast.Ident); !ok || (id.Name != "name" && id.Name != "sub") {
				return true
			}
			for _, stmt := range sw.Body.List {
				for _, e := range stmt.(*ast.CaseClause).List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						opts[v] = fset.Position(lit.Pos()).String()
					}
				}
			}
			return true
		})
	}
	return opts
}

// documentedOptions returns the words that start a line of a Caddyfile
// block of the README: the options it documents.
func documentedOptions(readme string) map[string]bool {
	words := map[string]bool{}
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(readme, -1)
	for _, b := range blocks {
		for _, line := range strings.Split(b[1], "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
			if f := strings.Fields(line); len(f) > 0 {
				words[f[0]] = true
			}
		}
	}
	return words
}

// TestREADMEReference: every option the Caddyfile grammar parses is shown
// in a Caddyfile block of the README, so the reference cannot fall behind
// the code.
func TestREADMEReference(t *testing.T) {
	opts := caddyfileOptions(t)
	if len(opts) < 40 {
		t.Fatalf("found only %d options in the grammar; did the parsing functions change shape?", len(opts))
	}
	documented := documentedOptions(readme(t))
	var missing []string
	for name, pos := range opts {
		if !documented[name] {
			missing = append(missing, name+" ("+pos+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("options parsed by the grammar but missing from the README's Caddyfile blocks:\n%s", strings.Join(missing, "\n"))
	}
}

// TestREADMEReferenceNoticesARemovedOption: the reference check fails for
// an option the README does not show.
func TestREADMEReferenceNoticesARemovedOption(t *testing.T) {
	text := readme(t)
	documented := documentedOptions(text)
	if !documented["refresh_token_grace"] {
		t.Fatal("refresh_token_grace should be documented")
	}
	removed := regexp.MustCompile(`(?m)^\s*#?\s*refresh_token_grace\b.*$`).ReplaceAllString(text, "")
	if documentedOptions(removed)["refresh_token_grace"] {
		t.Fatal("an option removed from the README still counts as documented")
	}
}

// TestREADMELayout: the README's Layout section names every package of the
// repository, and nothing else.
func TestREADMELayout(t *testing.T) {
	text := readme(t)
	i := strings.Index(text, "## Layout")
	if i < 0 {
		t.Fatal("README has no Layout section")
	}
	block := regexp.MustCompile("(?s)```text\n(.*?)```").FindStringSubmatch(text[i:])
	if block == nil {
		t.Fatal("the Layout section has no text block")
	}
	var listed []string
	for _, line := range strings.Split(block[1], "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed = append(listed, strings.TrimSuffix(f[0], "/"))
		}
	}
	var packages []string
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "results" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			dir, _ := filepath.Rel(root, filepath.Dir(path))
			if !slices.Contains(packages, dir) {
				packages = append(packages, filepath.ToSlash(dir))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(packages)
	sorted := slices.Clone(listed)
	sort.Strings(sorted)
	if !slices.Equal(sorted, packages) {
		t.Fatalf("README Layout lists\n%s\nthe repository's packages are\n%s", strings.Join(sorted, "\n"), strings.Join(packages, "\n"))
	}
}
