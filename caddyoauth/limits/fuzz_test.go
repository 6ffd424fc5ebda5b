package limits

import "testing"

// FuzzParseRate: ParseRate never panics, and a rate it accepts is valid
// and reads back from its own String.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"20/s", "5/m", "1/h", "100/10s", "0/s", "1/0s", "9999999999/s", "1/1ns", "/", "1/-1m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil || r.window() <= 0 {
			t.Fatalf("ParseRate(%q) = %+v, which is invalid: %v", s, r, err)
		}
		if back, err := ParseRate(r.String()); err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %+v, String %q reads back as %+v, %v", s, r, r.String(), back, err)
		}
	})
}
