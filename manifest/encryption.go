package manifest

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rockstream/rockstream/objstore"
)

// Errors of a keyring that does not fit an archive, for errors.Is.
var (
	// ErrKeyRequired: the archive is encrypted and no key was given.
	ErrKeyRequired = errors.New("the archive is encrypted")
	// ErrNotEncrypted: a key was given for an archive that is not
	// encrypted.
	ErrNotEncrypted = errors.New("the archive is not encrypted")
	// ErrWrongKey: none of the keys given wrote any of the archive.
	ErrWrongKey = errors.New("wrong key")
)

// CheckStore checks that the store s can read m: encrypting with a key of
// the archive when it is encrypted (objstore.Encrypting), not encrypting
// when it is not (CheckKeys).
func (m *Manifest) CheckStore(s objstore.Store) error {
	if err := m.CheckKeys(objstore.KeyIDs(s), ""); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}

// CheckKeys checks that a keyring with the key ids ids (none: no key
// given) fits m: an encrypted archive needs a key that wrote some of it
// (objects written with a key the keyring lacks then fail one by one,
// naming it); a plaintext one takes no key, since encryption is chosen
// when an archive is created. writing is the id a writer encrypts with
// ("" for a reader): it may be new to the archive (a rotation).
func (m *Manifest) CheckKeys(ids []string, writing string) error {
	switch {
	case m.Encryption == nil && len(ids) == 0:
		return nil
	case m.Encryption == nil:
		return fmt.Errorf("%w, but an encryption key file is given (key %s): encryption is chosen when an archive is created; archive to a new location to encrypt, or drop the key file",
			ErrNotEncrypted, ids[0])
	case len(ids) == 0:
		return fmt.Errorf("%w with key %s: give its key file (--encryption-key-file, or ROCKSTREAM_ENCRYPTION_KEY_FILE)",
			ErrKeyRequired, strings.Join(m.Encryption.KeyIDs, ", "))
	}
	for _, id := range ids {
		if slices.Contains(m.Encryption.KeyIDs, id) {
			return nil
		}
	}
	if writing != "" && len(ids) > 0 {
		// A new key that the archive does not know yet: only a keyring
		// that also holds one of the archive's keys may bring it in, so
		// that a wrong key file is not taken for a rotation.
		return fmt.Errorf("%w: the archive is encrypted with key %s; the key file holds %s. To rotate, keep the old key in the file after the new one (rockstream keygen --rotate)",
			ErrWrongKey, strings.Join(m.Encryption.KeyIDs, ", "), strings.Join(ids, ", "))
	}
	return fmt.Errorf("%w: the archive is encrypted with key %s; the key file holds %s",
		ErrWrongKey, strings.Join(m.Encryption.KeyIDs, ", "), strings.Join(ids, ", "))
}
