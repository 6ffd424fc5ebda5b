package pages

import (
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// Branding is the operator's look for every page.
type Branding struct {
	// Name is shown at the top of every page and in its title. Default:
	// none.
	Name string `json:"name,omitempty"`
	// Logo is an image shown at the top of every page: a path the gateway
	// serves (/brand/logo.svg) or an https URL, whose origin the pages'
	// Content-Security-Policy then allows for images. Default: none.
	Logo string `json:"logo,omitempty"`
	// Color is the colour of buttons, links and focus rings, as #rrggbb
	// or #rgb. Default: #2563eb.
	Color string `json:"color,omitempty"`
	// SupportURL is an https link to help, at the foot of every page.
	// Default: none.
	SupportURL string `json:"support_url,omitempty"`
}

// Brand is the branding as the templates see it.
type Brand struct {
	Name, Logo string
	SupportURL string
	// Color is the brand colour as #rrggbb; CSS declares the custom
	// properties --brand (backgrounds), --brand-fg (text on it),
	// --brand-dark (hover) and --brand-ink (text and rings on light
	// backgrounds, darkened when the colour is too light to read).
	Color string
	CSS   template.CSS
}

// DefaultColor is the brand colour without branding.
const DefaultColor = "#2563eb"

const maxBrandText = 200

// CheckName, CheckLogo, CheckColor and CheckSupportURL check one branding
// setting; CheckColor returns the colour as #rrggbb.
func CheckName(name string) error {
	if name == "" || len(name) > maxBrandText || strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("branding name must be 1 to %d characters without control characters", maxBrandText)
	}
	return nil
}

// CheckLogo accepts a path on the gateway or an https URL, and returns the
// origin to allow for images ("" for a path).
func CheckLogo(logo string) (string, error) {
	if len(logo) > 2048 || strings.ContainsFunc(logo, func(r rune) bool { return r <= ' ' || r > '~' || r == '\\' || r == '"' || r == '\'' }) {
		return "", fmt.Errorf("branding logo %q must be a path or an https URL of printable ASCII", logo)
	}
	if strings.HasPrefix(logo, "/") && !strings.HasPrefix(logo, "//") {
		return "", nil
	}
	origin, err := httpsOrigin(logo)
	if err != nil {
		return "", fmt.Errorf("branding logo %q must be a path the gateway serves (/...) or an https URL", logo)
	}
	return origin, nil
}

// httpsOrigin returns the origin of an absolute https URL without user
// information.
func httpsOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", fmt.Errorf("not an https URL")
	}
	if strings.ContainsFunc(u.Host, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]", r))
	}) {
		return "", fmt.Errorf("not an https URL")
	}
	return "https://" + strings.ToLower(u.Host), nil
}

// CheckSupportURL accepts an absolute https URL.
func CheckSupportURL(raw string) error {
	if len(raw) > 2048 || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return fmt.Errorf("branding support_url %q must be an https URL", raw)
	}
	if _, err := httpsOrigin(raw); err != nil {
		return fmt.Errorf("branding support_url %q must be an https URL", raw)
	}
	return nil
}

// CheckColor accepts #rrggbb or #rgb (the # may be left out).
func CheckColor(c string) (string, error) {
	h := strings.TrimPrefix(c, "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	if len(h) != 6 {
		return "", fmt.Errorf("branding color %q must be a hex colour such as #0b5fff", c)
	}
	if _, err := strconv.ParseUint(h, 16, 32); err != nil {
		return "", fmt.Errorf("branding color %q must be a hex colour such as #0b5fff", c)
	}
	return "#" + strings.ToLower(h), nil
}

// view checks the branding and returns it for the templates, with the
// origin the logo needs in img-src.
func (b *Branding) view() (Brand, string, error) {
	v := Brand{Color: DefaultColor}
	var imgSrc string
	if b != nil {
		if b.Name != "" {
			if err := CheckName(b.Name); err != nil {
				return v, "", err
			}
			v.Name = b.Name
		}
		if b.Logo != "" {
			var err error
			if imgSrc, err = CheckLogo(b.Logo); err != nil {
				return v, "", err
			}
			v.Logo = b.Logo
		}
		if b.Color != "" {
			c, err := CheckColor(b.Color)
			if err != nil {
				return v, "", err
			}
			v.Color = c
		}
		if b.SupportURL != "" {
			if err := CheckSupportURL(b.SupportURL); err != nil {
				return v, "", err
			}
			v.SupportURL = b.SupportURL
		}
	}
	v.CSS = brandCSS(v.Color)
	return v, imgSrc, nil
}

// The light backgrounds text in the brand colour sits on.
var (
	white    = rgb{1, 1, 1}
	black    = rgb{0, 0, 0}
	pageGray = rgb{0xee / 255.0, 0xf1 / 255.0, 0xf5 / 255.0}
)

// brandCSS derives the colours of the pages from the brand colour so that
// every text keeps a WCAG AA contrast of 4.5:1 whatever the colour.
func brandCSS(hex string) template.CSS {
	c := parseRGB(hex)
	// White or black on the colour: the better of the two has at least
	// 4.58:1 for any colour. Hovering moves away from the text's colour.
	fg, hover := white, c.scale(0.85)
	if contrast(c, white) < contrast(c, black) {
		fg, hover = black, c.mix(white, 0.25)
	}
	text := c
	for contrast(text, pageGray) < 4.6 {
		text = text.scale(0.92)
	}
	return template.CSS(fmt.Sprintf("--brand:%s;--brand-fg:%s;--brand-dark:%s;--brand-ink:%s", c, fg, hover, text))
}

type rgb struct{ r, g, b float64 }

func parseRGB(hex string) rgb {
	v, _ := strconv.ParseUint(strings.TrimPrefix(hex, "#"), 16, 32)
	return rgb{float64(v>>16&0xff) / 255, float64(v>>8&0xff) / 255, float64(v&0xff) / 255}
}

func (c rgb) String() string {
	ch := func(x float64) int { return int(math.Round(math.Max(0, math.Min(1, x)) * 255)) }
	return fmt.Sprintf("#%02x%02x%02x", ch(c.r), ch(c.g), ch(c.b))
}

func (c rgb) scale(f float64) rgb { return rgb{c.r * f, c.g * f, c.b * f} }

func (c rgb) mix(o rgb, f float64) rgb {
	return rgb{c.r + (o.r-c.r)*f, c.g + (o.g-c.g)*f, c.b + (o.b-c.b)*f}
}

// luminance is the relative luminance of WCAG 2.
func (c rgb) luminance() float64 {
	lin := func(x float64) float64 {
		if x <= 0.04045 {
			return x / 12.92
		}
		return math.Pow((x+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.r) + 0.7152*lin(c.g) + 0.0722*lin(c.b)
}

func contrast(a, b rgb) float64 {
	la, lb := a.luminance(), b.luminance()
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}
