package crypt

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KeySize is the size of a master key.
const KeySize = 32

// ErrKeyFile is a key file that cannot be used: missing, unreadable, open
// to others, or not holding keys.
var ErrKeyFile = errors.New("unusable key file")

// Key is one master key with its derived sub-keys. Its String and Format
// give only the id: a Key never prints its secret.
type Key struct {
	id   ID
	data [32]byte // content of objects
	name [32]byte // names of content-addressed objects
}

// ID names a key: 8 bytes of HMAC-SHA256(master, "rockstream key id").
type ID [8]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID reads an id of 16 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("key id %q is not 16 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// NewKey derives a Key from 32 bytes of master key.
func NewKey(master []byte) (*Key, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("a key is %d bytes, not %d", KeySize, len(master))
	}
	k := &Key{}
	mac := hmac.New(sha256.New, master)
	mac.Write([]byte("rockstream key id"))
	copy(k.id[:], mac.Sum(nil))
	for _, sub := range []struct {
		out  *[32]byte
		info string
	}{{&k.data, "rockstream data v1"}, {&k.name, "rockstream name v1"}} {
		b, err := hkdf.Key(sha256.New, master, nil, sub.info, 32)
		if err != nil {
			return nil, err
		}
		copy(sub.out[:], b)
	}
	return k, nil
}

// ID is the key's id.
func (k *Key) ID() ID { return k.id }

// Bind returns the key's sub-keys for one archive, named by archive (a
// random id that the archive's manifest records): HKDF-SHA256 of each
// sub-key with the archive id as salt. The same key file used for two
// archives then seals their objects under unrelated keys and names their
// SST files differently, so that an object copied from one archive into
// the other fails its authentication, and equal files of the two cannot
// be told. The id stays the key's.
func (k *Key) Bind(archive string) (*Key, error) {
	if archive == "" {
		return nil, errors.New("bind a key: no archive id")
	}
	b := &Key{id: k.id}
	for _, sub := range []struct {
		in, out *[32]byte
		info    string
	}{{&k.data, &b.data, "rockstream archive data v1"}, {&k.name, &b.name, "rockstream archive name v1"}} {
		d, err := hkdf.Key(sha256.New, sub.in[:], []byte(archive), sub.info, 32)
		if err != nil {
			return nil, err
		}
		copy(sub.out[:], d)
	}
	return b, nil
}

func (k *Key) String() string { return "key " + k.id.String() }

// Format prints what String does, whatever the verb (%#v, %+v, %x and
// the others): a Key never prints its sub-keys, not even as a value or in
// a struct.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// GoString is String: %#v shows only the id.
func (k Key) GoString() string { return k.String() }

// Name returns a keyed name for content whose SHA-256 is sum (64 hex
// digits): HMAC-SHA256(name key, sum), in hex. Equal content gets the same
// name under one key; without the key a name tells nothing of the content
// and a guess of it cannot be checked.
func (k *Key) Name(sum string) string {
	mac := hmac.New(sha256.New, k.name[:])
	mac.Write([]byte(sum))
	return hex.EncodeToString(mac.Sum(nil))
}

// Keyring is one or more keys: the first encrypts, all decrypt.
type Keyring struct {
	keys []*Key
}

// NewKeyring makes a keyring of keys, the first the one that encrypts.
func NewKeyring(keys ...*Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("a keyring needs a key")
	}
	seen := map[ID]bool{}
	for _, k := range keys {
		if seen[k.id] {
			return nil, fmt.Errorf("key %s is in the keyring twice", k.id)
		}
		seen[k.id] = true
	}
	return &Keyring{keys: keys}, nil
}

// String names the keys by their ids, the current one first.
func (r *Keyring) String() string { return "keyring " + strings.Join(r.IDs(), " ") }

// Format prints what String does, whatever the verb: never a key.
func (r Keyring) Format(f fmt.State, _ rune) { io.WriteString(f, r.String()) }

// GoString is String.
func (r Keyring) GoString() string { return r.String() }

// Current is the key that encrypts.
func (r *Keyring) Current() *Key { return r.keys[0] }

// Keys are all the keys, the current one first.
func (r *Keyring) Keys() []*Key { return r.keys }

// Find is the key with id, or nil.
func (r *Keyring) Find(id ID) *Key {
	for _, k := range r.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

// Bind is the keyring of the keys bound to one archive (Key.Bind).
func (r *Keyring) Bind(archive string) (*Keyring, error) {
	keys := make([]*Key, len(r.keys))
	for i, k := range r.keys {
		b, err := k.Bind(archive)
		if err != nil {
			return nil, err
		}
		keys[i] = b
	}
	return NewKeyring(keys...)
}

// IDs are the ids of the keys, the current one first.
func (r *Keyring) IDs() []string {
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.id.String()
	}
	return out
}

// LoadKeyFile reads a key file: one key per line (44 characters of base64
// or 64 hex digits), blank lines and # comments ignored, the first key the
// one that encrypts. The file must not be readable or writable by group or
// others (mode 0600 or 0400), as ssh requires of a private key.
func LoadKeyFile(path string) (*Keyring, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrKeyFile, path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w %s: not a regular file", ErrKeyFile, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w %s: mode %04o lets others read or change it; run: chmod 600 %s", ErrKeyFile, path, fi.Mode().Perm(), path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrKeyFile, path, err)
	}
	defer f.Close()
	r, err := ParseKeys(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrKeyFile, path, err)
	}
	return r, nil
}

// ParseKeys reads the keys of a key file's content. An error names the
// line, never its content.
func ParseKeys(in io.Reader) (*Keyring, error) {
	var keys []*Key
	sc := bufio.NewScanner(in)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		master, err := decodeKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		k, err := NewKey(master)
		clear(master)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no key in it (rockstream keygen writes one)")
	}
	return NewKeyring(keys...)
}

func decodeKey(s string) ([]byte, error) {
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != KeySize {
		return nil, fmt.Errorf("not a key: %d bytes expected, as %d characters of base64 or %d hex digits", KeySize, base64.StdEncoding.EncodedLen(KeySize), hex.EncodedLen(KeySize))
	}
	return b, nil
}

// Keygen writes a new key to path, created with mode 0600, and returns its
// id. With rotate, path must hold a keyring already: the new key is put
// first (it encrypts from then on) and the others kept after it, so that
// what they encrypted stays readable; the file is replaced atomically.
// Without rotate, an existing path is refused.
func Keygen(path string, rotate bool, now time.Time) (ID, error) {
	master := make([]byte, KeySize)
	if _, err := rand.Read(master); err != nil {
		return ID{}, err
	}
	defer clear(master)
	k, err := NewKey(master)
	if err != nil {
		return ID{}, err
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# rockstream encryption key %s, made %s. Keep a copy apart from the bucket:\n# without it the archive cannot be read.\n%s\n",
		k.id, now.UTC().Format(time.RFC3339), base64.StdEncoding.EncodeToString(master))
	if !rotate {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return ID{}, fmt.Errorf("write the key file: %w", err)
		}
		if _, err := f.Write(buf.Bytes()); err != nil {
			f.Close()
			os.Remove(path)
			return ID{}, fmt.Errorf("write the key file: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			os.Remove(path)
			return ID{}, fmt.Errorf("write the key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return ID{}, fmt.Errorf("write the key file: %w", err)
		}
		return k.id, syncDir(path)
	}
	old, err := LoadKeyFile(path)
	if err != nil {
		return ID{}, err
	}
	if old.Find(k.id) != nil {
		return ID{}, errors.New("the new key is in the keyring already") // never: 256 random bits
	}
	prev, err := os.ReadFile(path)
	if err != nil {
		return ID{}, fmt.Errorf("read the key file: %w", err)
	}
	buf.WriteString("# the keys before it, still used to read what they encrypted:\n")
	buf.Write(prev)
	// A new file of mode 0600 (not path.tmp opened with O_TRUNC, which
	// would keep the mode of a file left there, say 0644, and so give
	// the keys to everyone when renamed over path).
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return ID{}, fmt.Errorf("write the key file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return ID{}, fmt.Errorf("write the key file: %w", err)
	}
	return k.id, syncDir(path)
}

// syncDir makes the creation or the rename of the file path durable: a
// key lost in a crash after objects were written with it would leave them
// unreadable for good.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("write the key file: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write the key file: sync its folder: %w", err)
	}
	return nil
}
