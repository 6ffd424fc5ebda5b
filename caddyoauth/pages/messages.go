package pages

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Shipped are the languages whose catalogues are embedded; English is the
// fallback of every other.
var Shipped = []string{"en", "de", "fr", "es", "ja"}

//go:embed messages/*.json
var catalogues embed.FS

// language is one language's messages and page templates.
type language struct {
	// tag is as configured (pt-BR); chain is it, then its base language
	// (pt), for scope descriptions.
	tag   string
	chain []string
	dir   string
	msgs  map[string]string
	pages map[string]*template.Template
}

var tagRE = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)

// ValidTag reports whether tag is a language tag such as de or pt-BR.
func ValidTag(tag string) bool { return len(tag) <= 35 && tagRE.MatchString(tag) }

var placeholderRE = regexp.MustCompile(`\{([a-z_]+)\}`)

// readCatalogue reads a JSON object of message keys to texts.
func readCatalogue(b []byte) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func shippedCatalogue(tag string) map[string]string {
	b, err := catalogues.ReadFile("messages/" + tag + ".json")
	if err != nil {
		panic(err)
	}
	m, err := readCatalogue(b)
	if err != nil {
		panic(fmt.Sprintf("messages/%s.json: %v", tag, err)) // tested
	}
	return m
}

// loadLanguages builds every language: the shipped ones, each completed
// from English, and the operator's files, each over the shipped language
// of its tag or its base language, else over English. A file's key must
// be one English has, with no placeholder English lacks.
func loadLanguages(files map[string]string) (map[string]*language, error) {
	en := shippedCatalogue("en")
	cats := map[string]map[string]string{}
	tags := map[string]string{}
	for _, tag := range Shipped {
		m := maps.Clone(en)
		maps.Copy(m, shippedCatalogue(tag))
		cats[tag], tags[tag] = m, tag
	}
	// Base languages first, so de-CH builds on the operator's de.
	names := slices.Collect(maps.Keys(files))
	sort.Slice(names, func(i, j int) bool {
		return len(names[i]) < len(names[j]) || len(names[i]) == len(names[j]) && names[i] < names[j]
	})
	for _, tag := range names {
		path := files[tag]
		if !ValidTag(tag) {
			return nil, fmt.Errorf("language %q: not a language tag such as de or pt-BR", tag)
		}
		key := strings.ToLower(tag)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("language %s: %v", tag, err)
		}
		own, err := readCatalogue(b)
		if err != nil {
			return nil, fmt.Errorf("language %s: %s: %v", tag, path, err)
		}
		for k, v := range own {
			base, ok := en[k]
			if !ok {
				return nil, fmt.Errorf("language %s: %s: unknown message %q", tag, path, k)
			}
			for _, p := range placeholderRE.FindAllStringSubmatch(v, -1) {
				if !strings.Contains(base, p[0]) {
					return nil, fmt.Errorf("language %s: %s: message %q: unknown placeholder %s", tag, path, k, p[0])
				}
			}
			if k == "page.dir" && v != "ltr" && v != "rtl" {
				return nil, fmt.Errorf("language %s: %s: page.dir must be ltr or rtl", tag, path)
			}
		}
		under := cats[key]
		if under == nil {
			under = cats[baseOf(key)]
		}
		if under == nil {
			under = cats["en"]
		}
		m := maps.Clone(under)
		maps.Copy(m, own)
		cats[key] = m
		if _, ok := tags[key]; !ok {
			tags[key] = tag
		}
	}
	out := map[string]*language{}
	for key, m := range cats {
		l := &language{tag: tags[key], chain: []string{tags[key]}, dir: m["page.dir"], msgs: m}
		if b := baseOf(key); b != key {
			l.chain = append(l.chain, b)
		}
		out[key] = l
	}
	return out, nil
}

func baseOf(tag string) string {
	if i := strings.IndexByte(tag, '-'); i > 0 {
		return tag[:i]
	}
	return tag
}

// pick chooses the page's language from Accept-Language (RFC 9110
// §12.5.4): the most preferred range that names a language the gateway
// has, matched whole, then by its base language (de-CH gets de), then as
// the base of a regional one (pt gets pt-BR); English otherwise.
func (s *Set) pick(r *http.Request) *language {
	if r == nil {
		return s.fallback
	}
	for _, tag := range acceptLanguages(r.Header.Values("Accept-Language")) {
		if l := s.langs[tag]; l != nil {
			return l
		}
		if l := s.langs[baseOf(tag)]; l != nil {
			return l
		}
		var regional []string
		for key := range s.langs {
			if strings.HasPrefix(key, tag+"-") {
				regional = append(regional, key)
			}
		}
		if len(regional) > 0 {
			slices.Sort(regional)
			return s.langs[regional[0]]
		}
	}
	return s.fallback
}

// maxRanges bounds the language ranges looked at.
const maxRanges = 16

// acceptLanguages returns the language ranges of Accept-Language, lower
// case, most preferred first; * and ranges with q=0 are left out.
func acceptLanguages(values []string) []string {
	type weighted struct {
		tag string
		q   float64
	}
	var out []weighted
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			if len(out) == maxRanges {
				break
			}
			tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			tag = strings.ToLower(strings.TrimSpace(tag))
			if tag == "*" || !ValidTag(tag) {
				continue
			}
			q := 1.0
			for param := range strings.SplitSeq(params, ";") {
				if name, val, ok := strings.Cut(strings.TrimSpace(param), "="); ok && strings.TrimSpace(name) == "q" {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0
					}
					q = f
				}
			}
			if q > 0 {
				out = append(out, weighted{tag, q})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].q > out[j].q })
	tags := make([]string, len(out))
	for i, w := range out {
		tags[i] = w.tag
	}
	return tags
}

// fill replaces the {placeholders} of text that value knows.
func fill(text string, value func(name string) (string, bool)) string {
	return placeholderRE.ReplaceAllStringFunc(text, func(p string) string {
		if v, ok := value(p[1 : len(p)-1]); ok {
			return v
		}
		return p
	})
}

// html is the template function t: the message escaped, then its
// placeholders filled from name, value pairs.
func (l *language) html(key string, args ...any) (template.HTML, error) {
	text, ok := l.msgs[key]
	if !ok {
		return "", fmt.Errorf("no message %q", key)
	}
	if len(args)%2 != 0 {
		return "", fmt.Errorf("message %q: arguments must be name, value pairs", key)
	}
	return template.HTML(fill(template.HTMLEscapeString(text), func(name string) (string, bool) {
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] != name {
				continue
			}
			if h, ok := args[i+1].(template.HTML); ok {
				return string(h), true
			}
			return template.HTMLEscapeString(fmt.Sprint(args[i+1])), true
		}
		return "", false
	})), nil
}
