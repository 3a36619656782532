// Package crypt is rockstream's client-side encryption: keys and the
// framing of an encrypted object. It knows nothing of stores or archives;
// objstore/cryptstore applies it to every object an archive writes
// (docs/ENCRYPTION.md).
//
// # Keys
//
// A key is 32 random bytes (a master key). A keyring is one or more of
// them: the first encrypts, any of them decrypts the objects that name its
// id. A key file holds one key per line, base64 or hex, with # comments
// (Keygen writes one); it must not be readable by group or others.
//
// A key's id is the first 8 bytes of HMAC-SHA256(master, "rockstream key
// id"), printed as 16 hex digits: it names the key in objects, the
// manifest, status and errors, and reveals nothing of it. From the master
// key HKDF-SHA256 derives one sub-key per purpose: "data" (the content of
// objects) and "name" (the names of content-addressed objects), so that no
// key serves two uses.
//
// # Objects
//
// An encrypted object is a header and one or more sealed blocks:
//
//	header (48 bytes): magic "RSENC" (5), version 1 (1), block size as a
//	    power of two (1, 20: 1 MiB), reserved 0 (1), key id (8), salt (32)
//	block i: AES-256-GCM seal of up to one block of the plaintext, with its
//	    16-byte tag
//
// Each object has its own content key, HKDF-SHA256(data key, salt, "rockstream
// object v1" 0x00 object name), from a salt drawn at random for each write,
// so the nonce of block i can be i itself (8 bytes big-endian, then 4 zero
// bytes) with no bound on the number of objects. The additional data of
// block i is the header, and a byte that is 1 on the last block only: a
// flipped byte, a block moved, dropped or taken from another object, an
// object renamed, stored under another key or cut at a block boundary each
// fail the tag check of the first wrong block, and an object always has a
// last block (an empty object is one empty block). The plaintext's size
// follows from the object's (PlainSize), so ranges of it can be read
// (RangeOf, OpenRange) with one block of memory.
package crypt
