package foreign

import (
	"strings"
	"testing"
)

// TestShapeOptions: every shape's options strings are valid RocksDB
// options, and the homeserver shape has the mix the suite promises.
func TestShapeOptions(t *testing.T) {
	for _, name := range Names() {
		s, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if o, err := parseOptions(s.DBOptions); err != nil {
			t.Errorf("%s: database options %q: %v", name, s.DBOptions, err)
		} else {
			o.Destroy()
		}
		for _, f := range append(s.Families, Family{Name: "churn-0"}, Family{Name: "churn-3"}) {
			o, err := parseOptions(s.familyOptions(f.Name))
			if err != nil {
				t.Errorf("%s: family %q options: %v", name, f.Name, err)
				continue
			}
			o.Destroy()
		}
	}
	hs, _ := Lookup("homeserver")
	kinds := map[string]int{}
	for _, f := range hs.Families {
		switch {
		case strings.Contains(f.Options, "kCompactionStyleFIFO") && strings.Contains(f.Options, "ttl="):
			kinds["fifo"]++
		case strings.Contains(f.Options, "kCompactionStyleUniversal"):
			kinds["universal"]++
		default:
			kinds["level"]++
		}
	}
	if len(hs.Families) < 80 || kinds["fifo"] == 0 || kinds["universal"] == 0 || kinds["level"] == 0 {
		t.Errorf("homeserver: %d families, %v", len(hs.Families), kinds)
	}
	if _, err := Lookup("nosuch"); err == nil || !strings.Contains(err.Error(), "plain") {
		t.Errorf("Lookup of an unknown shape: %v", err)
	}
}
