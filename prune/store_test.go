package prune

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/segments"
)

// materialize writes the hand-built archive into a new file store: the
// manifest, the file lists, every base file and SST file (a few bytes
// each), and real segments of one batch each (end markers with no batch).
func (a *archive) materialize(t *testing.T) *filestore.Store {
	t.Helper()
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := manifest.Create(ctx, s, a.m); err != nil {
		t.Fatal(err)
	}
	for _, fl := range a.lists {
		for _, f := range fl.Files {
			putBytes(t, s, f.Key, []byte(f.Name))
		}
		if _, err := manifest.PutFileList(ctx, s, fl); err != nil {
			t.Fatal(err)
		}
	}
	for tl, segs := range a.segs {
		for _, sg := range segs {
			putBytes(t, s, sg.Key, segmentBytes(t, tl, sg.First, sg.Next))
		}
	}
	return s
}

func segmentBytes(t *testing.T, tl uint32, first, next uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := segments.Header{Codec: segments.CodecNone, Timeline: uint64(tl), FirstSeq: first}
	if next == first {
		h.Flags = segments.FlagEnd
	}
	w, err := segments.NewWriter(&buf, h, segments.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if next > first {
		data := make([]byte, 12, 20)
		binary.LittleEndian.PutUint64(data, first)
		binary.LittleEndian.PutUint32(data[8:], uint32(next-first))
		data = append(data, "payload!"...)
		if err := w.Append(segments.Batch{Seq: first, Count: uint32(next - first), Time: time.Now(), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func putBytes(t *testing.T, s objstore.Store, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// keys lists every object of the store but its own folder.
func keys(t *testing.T, s objstore.Store) []string {
	t.Helper()
	var out []string
	for _, prefix := range []string{"bases/", "sst/", "segments/", "prune/", "manifest.json"} {
		for info, err := range s.List(context.Background(), prefix, "") {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, info.Key)
		}
	}
	slices.Sort(out)
	return out
}

func without(all []string, gone []string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(k string) bool { return slices.Contains(gone, k) })
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// clock is a settable time for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// hookStore runs a function before a put of a key, once.
type hookStore struct {
	objstore.Store
	mu     sync.Mutex
	key    string
	before func()
}

func (h *hookStore) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	h.mu.Lock()
	fn := h.before
	if key == h.key {
		h.before = nil
	}
	h.mu.Unlock()
	if key == h.key && fn != nil {
		fn()
	}
	return h.Store.Put(ctx, key, body, size, opts)
}
