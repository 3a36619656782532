package crypt_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/rockstream/rockstream/crypt"
)

// FuzzOpen gives Open arbitrary bytes: it must never panic, and must either
// fail with one of crypt's errors, having given only whole authenticated
// blocks of a valid object, or give exactly the plaintext of a valid
// object.
func FuzzOpen(f *testing.F) {
	// The seeds must be the same in every process of the fuzzer.
	crypt.SetRandRead(f, goldenSalt)
	k := newKey(f, 0)
	r := newRing(f, k, newKey(f, 1))
	const name = "segments/00000001/0000000000000001.seg"
	type object struct{ sealed, plain []byte }
	var valid []object
	for i, n := range []int{0, 1, 15, 16, 17, 100, 1000, crypt.BlockSize + 10} {
		plain := plaintext(uint64(i), n)
		sealed := seal(f, k, name, plain)
		valid = append(valid, object{sealed, plain})
		if n < 2000 {
			f.Add(sealed)
			f.Add(sealed[:len(sealed)-1])
			f.Add(append(append([]byte(nil), sealed...), 0))
			bad := append([]byte(nil), sealed...)
			bad[len(bad)-1] ^= 1
			f.Add(bad)
		}
	}
	// One of the other key's, which opens too, and one of a key not in
	// the ring.
	other := seal(f, newKey(f, 1), name, []byte("other key"))
	valid = append(valid, object{other, []byte("other key")})
	f.Add(other)
	f.Add(seal(f, newKey(f, 2), name, []byte("missing key")))
	f.Add(valid[len(valid)-2].sealed) // the object of two blocks
	f.Add([]byte{})
	f.Add([]byte("RSENC"))
	f.Add([]byte("RSENC\x01\x14\x00"))
	f.Add(valid[0].sealed[:crypt.HeaderSize])
	f.Add([]byte("not encrypted at all, just some bytes of plaintext in a segment"))

	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := r.Open(name, bytes.NewReader(data))
		var got []byte
		if err == nil {
			got, err = io.ReadAll(o)
		}
		if err != nil {
			var mk *crypt.MissingKeyError
			if !errors.Is(err, crypt.ErrTampered) && !errors.Is(err, crypt.ErrNotEncrypted) &&
				!errors.Is(err, crypt.ErrUnknownFormat) && !errors.As(err, &mk) {
				t.Fatalf("unexpected error %v", err)
			}
			if len(got) == 0 {
				return
			}
			// Only whole blocks that are the same as a valid object's.
			k := len(got) / crypt.BlockSize
			if len(got)%crypt.BlockSize != 0 {
				t.Fatalf("gave %d bytes before failing: not whole blocks", len(got))
			}
			prefix := crypt.HeaderSize + k*(crypt.BlockSize+crypt.TagSize)
			for _, v := range valid {
				if len(v.sealed) >= prefix && len(data) >= prefix && bytes.Equal(v.sealed[:prefix], data[:prefix]) &&
					bytes.Equal(v.plain[:len(got)], got) {
					return
				}
			}
			t.Fatalf("gave %d bytes before failing, of no valid object", len(got))
		}
		for _, v := range valid {
			if bytes.Equal(v.sealed, data) {
				if !bytes.Equal(got, v.plain) {
					t.Fatalf("a valid object opened to %d other bytes", len(got))
				}
				return
			}
		}
		t.Fatalf("%d bytes that are no valid object opened to %d bytes", len(data), len(got))
	})
}
