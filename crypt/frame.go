package crypt

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// The framing's constants.
const (
	HeaderSize = 48
	BlockShift = 20
	BlockSize  = 1 << BlockShift
	TagSize    = 16
	version    = 1
	saltSize   = 32
)

var magic = []byte("RSENC")

// randRead draws the salts; tests replace it to make a sealing repeatable.
var randRead = rand.Read

// Errors of encrypted objects, for errors.Is.
var (
	// ErrNotEncrypted: the object does not start with an encryption
	// header (in an encrypted archive, it was replaced or never encrypted).
	ErrNotEncrypted = errors.New("not encrypted")
	// ErrTampered: a block fails its authentication: the object was
	// changed, truncated, moved or swapped, or is damaged.
	ErrTampered = errors.New("fails its authentication (changed, cut, moved or damaged)")
	// ErrUnknownFormat: an encryption header of a version or block size
	// that this build does not read.
	ErrUnknownFormat = errors.New("encrypted in a format this rockstream does not read (upgrade it?)")
)

// MissingKeyError is an object encrypted with a key that the keyring lacks.
type MissingKeyError struct {
	Object string
	ID     ID
	Have   []string
}

func (e *MissingKeyError) Error() string {
	return fmt.Sprintf("%s is encrypted with key %s; the keyring holds %v: give the key file that has key %s", e.Object, e.ID, e.Have, e.ID)
}

// Header is the start of an encrypted object.
type Header struct {
	ID   ID
	Salt [saltSize]byte
}

func (h Header) bytes() []byte {
	b := make([]byte, HeaderSize)
	copy(b, magic)
	b[5] = version
	b[6] = BlockShift
	copy(b[8:16], h.ID[:])
	copy(b[16:], h.Salt[:])
	return b
}

// ParseHeader reads the header at the start of an object named name.
func ParseHeader(name string, b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize || !bytes.Equal(b[:len(magic)], magic) {
		return h, fmt.Errorf("%s: %w", name, ErrNotEncrypted)
	}
	if b[5] != version || b[6] != BlockShift || b[7] != 0 {
		return h, fmt.Errorf("%s: version %d, block shift %d: %w", name, b[5], b[6], ErrUnknownFormat)
	}
	copy(h.ID[:], b[8:16])
	copy(h.Salt[:], b[16:HeaderSize])
	return h, nil
}

// IsEncrypted says whether b starts with an encryption header's magic.
func IsEncrypted(b []byte) bool { return len(b) >= len(magic) && bytes.Equal(b[:len(magic)], magic) }

// SealedSize is the size of the object that holds plain bytes.
func SealedSize(plain int64) int64 {
	blocks := max(1, (plain+BlockSize-1)/BlockSize)
	return HeaderSize + plain + blocks*TagSize
}

// PlainSize is the size of the plaintext of an object of sealed bytes.
func PlainSize(sealed int64) (int64, error) {
	r := sealed - HeaderSize
	if r < TagSize {
		return 0, fmt.Errorf("%d bytes: %w", sealed, ErrTampered)
	}
	n, rem := r/(BlockSize+TagSize), r%(BlockSize+TagSize)
	switch {
	case rem == 0:
		return n * BlockSize, nil
	case rem < TagSize, rem == TagSize && n > 0:
		// A last block shorter than its tag, or an empty last block
		// after full ones: Seal makes an empty block only for an empty
		// object.
		return 0, fmt.Errorf("%d bytes: %w", sealed, ErrTampered)
	}
	return n*BlockSize + rem - TagSize, nil
}

func blocksOf(plain int64) int64 { return max(1, (plain+BlockSize-1)/BlockSize) }

// aead is the cipher of one object.
func (k *Key) aead(name string, h Header) (cipher.AEAD, error) {
	ck, err := hkdf.Key(sha256.New, k.data[:], h.Salt[:], "rockstream object v1\x00"+name, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(ck)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func nonce(i int64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n, uint64(i))
	return n
}

func additional(hdr []byte, last bool) []byte {
	ad := make([]byte, len(hdr)+1)
	copy(ad, hdr)
	if last {
		ad[len(hdr)] = 1
	}
	return ad
}

// Seal returns the encrypted object, named name (its key in the store),
// of the plaintext that plain gives: a reader that encrypts a block at a
// time, under a fresh salt (so a retried write never reuses a nonce).
func (k *Key) Seal(name string, plain io.Reader) (io.Reader, error) {
	h := Header{ID: k.id}
	if _, err := randRead(h.Salt[:]); err != nil {
		return nil, err
	}
	a, err := k.aead(name, h)
	if err != nil {
		return nil, err
	}
	hdr := h.bytes()
	return &sealer{in: bufio.NewReaderSize(plain, 64<<10), a: a, hdr: hdr, stream: stream{out: hdr},
		plain: getBlock(), sealed: getBlock()[:0]}, nil
}

// blocks are the buffers of a block and its tag, reused: an archiver seals
// and opens objects all day, and fresh megabytes each time would keep the
// garbage collector busy.
var blocks = sync.Pool{New: func() any { b := make([]byte, BlockSize+TagSize); return &b }}

func getBlock() []byte { return (*blocks.Get().(*[]byte))[:BlockSize+TagSize] }

func putBlock(b []byte) {
	if cap(b) >= BlockSize+TagSize {
		b = b[:BlockSize+TagSize]
		blocks.Put(&b)
	}
}

// stream is what the sealer and the opener share: the bytes of the
// current block not read yet, and how the stream ended.
type stream struct {
	out  []byte // what is ready to be read
	done bool   // the last block is in out
	err  error
}

// read gives out, calling next for the next block whenever out is empty,
// and release once the stream ended.
func (st *stream) read(p []byte, next, release func()) (int, error) {
	for len(st.out) == 0 {
		if st.err != nil {
			release()
			return 0, st.err
		}
		if st.done {
			release()
			return 0, io.EOF
		}
		next()
	}
	n := copy(p, st.out)
	st.out = st.out[n:]
	return n, nil
}

type sealer struct {
	stream
	in     *bufio.Reader
	a      cipher.AEAD
	hdr    []byte
	plain  []byte
	sealed []byte
	i      int64
}

func (s *sealer) Read(p []byte) (int, error) { return s.read(p, s.next, s.release) }

// release gives the buffers back once the object is sealed.
func (s *sealer) release() {
	if s.plain != nil {
		putBlock(s.plain)
		putBlock(s.sealed)
		s.plain, s.sealed = nil, nil
	}
}

// next seals the next block: the last one when the plaintext ends with it
// (looked ahead by one byte).
func (s *sealer) next() {
	n, err := io.ReadFull(s.in, s.plain[:BlockSize])
	last := false
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		last = true
	case err != nil:
		s.err = err
		return
	default:
		if _, perr := s.in.Peek(1); perr == io.EOF {
			last = true
		} else if perr != nil {
			s.err = perr
			return
		}
	}
	s.sealed = s.a.Seal(s.sealed[:0], nonce(s.i), s.plain[:n], additional(s.hdr, last))
	s.out = s.sealed
	s.i++
	s.done = last
}

// Open returns the plaintext of the encrypted object named name that
// sealed gives, whole: each block is checked before a byte of it is
// given, so a reader sees only authenticated plaintext, and an object cut
// anywhere (even between blocks) is an error.
func (r *Keyring) Open(name string, sealed io.Reader) (io.Reader, error) {
	hdr := make([]byte, HeaderSize)
	if n, err := io.ReadFull(sealed, hdr); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if IsEncrypted(hdr[:n]) {
				return nil, fmt.Errorf("%s: its header is cut: %w", name, ErrTampered)
			}
			return nil, fmt.Errorf("%s: %w", name, ErrNotEncrypted)
		}
		return nil, err
	}
	return r.open(name, hdr, bufio.NewReaderSize(sealed, 64<<10), 0, -1)
}

// OpenRange returns length bytes from plaintext offset off of the object
// named name, whose header is hdr, whose plaintext has plain bytes
// (PlainSize of the object's size), and whose sealed bytes from
// RangeOf(off, length, plain) sealed gives. A length of zero or less, or
// one past the end, reads to the end, as RangeOf takes it.
func (r *Keyring) OpenRange(name string, hdr []byte, plain, off, length int64, sealed io.Reader) (io.Reader, error) {
	if off < 0 || off > plain {
		return nil, fmt.Errorf("%s: offset %d of %d bytes is out of range", name, off, plain)
	}
	if length <= 0 || length > plain-off { // not off+length, which may overflow
		length = plain - off
	}
	first := off / BlockSize
	o, err := r.open(name, hdr, bufio.NewReaderSize(sealed, 64<<10), first, blocksOf(plain))
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(io.Discard, o, off-first*BlockSize); err != nil {
		return nil, err
	}
	return io.LimitReader(o, length), nil
}

// RangeOf is the range of the sealed object that holds plaintext bytes
// [off, off+length) of an object of plain bytes: whole blocks.
func RangeOf(off, length, plain int64) (sealedOff, sealedLen int64) {
	if length <= 0 || length > plain-off {
		length = plain - off
	}
	first := off / BlockSize
	last := max(first, (off+length-1)/BlockSize)
	end := min(SealedSize(plain), HeaderSize+(last+1)*(BlockSize+TagSize))
	start := HeaderSize + first*(BlockSize+TagSize)
	return start, end - start
}

func (r *Keyring) open(name string, hdr []byte, in *bufio.Reader, first, blocks int64) (*opener, error) {
	h, err := ParseHeader(name, hdr)
	if err != nil {
		return nil, err
	}
	hdr = hdr[:HeaderSize:HeaderSize] // the additional data of every block
	k := r.Find(h.ID)
	if k == nil {
		return nil, &MissingKeyError{Object: name, ID: h.ID, Have: r.IDs()}
	}
	a, err := k.aead(name, h)
	if err != nil {
		return nil, err
	}
	return &opener{name: name, in: in, a: a, hdr: hdr, i: first, blocks: blocks, sealed: getBlock()}, nil
}

type opener struct {
	stream
	name   string
	in     *bufio.Reader
	a      cipher.AEAD
	hdr    []byte
	i      int64
	blocks int64 // -1: not known, found by looking ahead
	sealed []byte
}

func (o *opener) Read(p []byte) (int, error) { return o.read(p, o.next, o.release) }

// release gives the buffer back once the object is read.
func (o *opener) release() {
	if o.sealed != nil {
		putBlock(o.sealed)
		o.sealed = nil
	}
}

func (o *opener) next() {
	n, err := io.ReadFull(o.in, o.sealed)
	last := false
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		last = true
	case err != nil:
		o.err = fmt.Errorf("%s: read block %d: %w", o.name, o.i, err)
		return
	default:
		if o.blocks >= 0 {
			last = o.i == o.blocks-1
		} else if _, perr := o.in.Peek(1); perr == io.EOF {
			last = true
		} else if perr != nil {
			o.err = fmt.Errorf("%s: read block %d: %w", o.name, o.i, perr)
			return
		}
	}
	if o.blocks >= 0 && last != (o.i == o.blocks-1) {
		o.err = fmt.Errorf("%s: block %d: it ends before its last block: %w", o.name, o.i, ErrTampered)
		return
	}
	if n < TagSize {
		o.err = fmt.Errorf("%s: block %d is cut: %w", o.name, o.i, ErrTampered)
		return
	}
	plain, err := o.a.Open(o.sealed[:0], nonce(o.i), o.sealed[:n], additional(o.hdr, last))
	if err != nil {
		o.err = fmt.Errorf("%s: block %d: %w", o.name, o.i, ErrTampered)
		return
	}
	o.out = plain
	o.i++
	o.done = last
}

// IsPermanent says whether err is an encrypted object that cannot be read
// by trying again: changed (ErrTampered), not encrypted, of an unknown
// format, or encrypted with a key the keyring lacks. A transfer that
// broke off is not: readers try those again.
func IsPermanent(err error) bool {
	var mk *MissingKeyError
	return errors.Is(err, ErrTampered) || errors.Is(err, ErrNotEncrypted) || errors.Is(err, ErrUnknownFormat) || errors.As(err, &mk)
}

// SealAt returns the encrypted object named name of the size bytes of
// plain (read with ReadAt from offset 0) as a reader that can seek: a
// block is sealed when it is read, into a buffer of one block, under one
// salt drawn here, so reading the object again after a Seek (an HTTP
// client computing a signature, then sending; a retry) gives the same
// bytes. Memory stays at two blocks whatever the size.
func (k *Key) SealAt(name string, plain io.ReaderAt, size int64) (*SealedReader, error) {
	h := Header{ID: k.id}
	if _, err := randRead(h.Salt[:]); err != nil {
		return nil, err
	}
	a, err := k.aead(name, h)
	if err != nil {
		return nil, err
	}
	return &SealedReader{plain: plain, size: size, total: SealedSize(size), a: a, hdr: h.bytes(), block: -1}, nil
}

// SealedReader is an encrypted object sealed as it is read (SealAt).
type SealedReader struct {
	plain       io.ReaderAt
	size, total int64 // of the plaintext, of the object
	a           cipher.AEAD
	hdr         []byte
	off         int64
	block       int64  // the block in sealed, -1: none
	sealed      []byte // that block, sealed
	buf         []byte // its plaintext
}

// Len is what is left to read.
func (r *SealedReader) Len() int { return int(r.total - r.off) }

// Size is the size of the whole object.
func (r *SealedReader) Size() int64 { return r.total }

// Seek moves to an offset of the object.
func (r *SealedReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.total
	}
	if offset < 0 {
		return 0, errors.New("crypt: seek before the start of the object")
	}
	r.off = offset
	return offset, nil
}

func (r *SealedReader) Read(p []byte) (int, error) {
	if r.off >= r.total {
		r.release()
		return 0, io.EOF
	}
	if r.off < HeaderSize {
		n := copy(p, r.hdr[r.off:])
		r.off += int64(n)
		return n, nil
	}
	b := (r.off - HeaderSize) / (BlockSize + TagSize)
	if b != r.block {
		if err := r.seal(b); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.sealed[(r.off-HeaderSize)-b*(BlockSize+TagSize):])
	r.off += int64(n)
	return n, nil
}

// seal seals block b of the plaintext.
func (r *SealedReader) seal(b int64) error {
	if r.buf == nil {
		r.buf, r.sealed = getBlock(), getBlock()
	}
	start := b * BlockSize
	n := min(int64(BlockSize), r.size-start)
	if n > 0 {
		// ReadAt fills the whole block or fails; io.EOF with a full block
		// is its end.
		if k, err := r.plain.ReadAt(r.buf[:n], start); err != nil && !(err == io.EOF && int64(k) == n) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("crypt: read the plaintext at %d: %w", start, err)
		}
	}
	last := start+n >= r.size
	r.sealed = r.a.Seal(r.sealed[:0], nonce(b), r.buf[:n], additional(r.hdr, last))
	r.block = b
	return nil
}

// release gives the buffers back once the object was read to its end.
func (r *SealedReader) release() {
	if r.buf != nil {
		putBlock(r.buf)
		putBlock(r.sealed[:cap(r.sealed)])
		r.buf, r.sealed, r.block = nil, nil, -1
	}
}
