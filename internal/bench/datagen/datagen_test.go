package datagen

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestValue(t *testing.T) {
	g := New(1)
	for _, size := range []int{2, 40, 200, 1000, 4096} {
		v := g.Value(nil, size)
		if len(v) != size {
			t.Fatalf("Value(%d) has %d bytes", size, len(v))
		}
	}
	v := g.Value([]byte("prefix"), 1000)
	if !bytes.HasPrefix(v, []byte("prefix")) || len(v) != 1006 {
		t.Fatalf("Value did not append: %q", v[:20])
	}
	var rec map[string]any
	if err := json.Unmarshal(v[6:], &rec); err != nil {
		t.Fatalf("a value is not JSON: %v\n%s", err, v[6:])
	}
}

func TestSameSeedSameBytes(t *testing.T) {
	a, b, c := New(7), New(7), New(8)
	va, vb, vc := a.Value(nil, 1000), b.Value(nil, 1000), c.Value(nil, 1000)
	if !bytes.Equal(va, vb) || bytes.Equal(va, vc) {
		t.Fatal("the output does not depend on the seed alone")
	}
}

// TestRatio pins the compressibility that the report states: about 2.3,
// neither db_bench's near-constant values nor random bytes.
func TestRatio(t *testing.T) {
	g := New(3)
	var data []byte
	for len(data) < 4<<20 {
		data = g.Value(data, 1000)
	}
	r, err := Ratio(data)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("zstd ratio %.2f", r)
	if r < 2 || r > 3.2 {
		t.Fatalf("zstd ratio %.2f, want 2 to 3.2", r)
	}
	if _, err := Ratio(nil); err == nil {
		t.Fatal("Ratio of nothing gave no error")
	}
}
