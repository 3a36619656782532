package objstore_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
)

// ignoring is a store that drops the conditions of puts, as some
// S3-compatible servers do.
type ignoring struct{ objstore.Store }

func (s ignoring) Put(ctx context.Context, key string, body io.Reader, size int64, _ objstore.PutOptions) (objstore.ObjectInfo, error) {
	return s.Store.Put(ctx, key, body, size, objstore.PutOptions{})
}

func TestCheck(t *testing.T) {
	fs, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	steps, err := objstore.Check(context.Background(), fs, "probe/x")
	if err != nil || len(steps) != 8 {
		t.Fatalf("check of a file store: %d steps, %v", len(steps), err)
	}
	steps, err = objstore.Check(context.Background(), ignoring{fs}, "probe/y")
	if !errors.Is(err, objstore.ErrNoConditionalWrites) {
		t.Fatalf("check of a store that ignores conditions: %v", err)
	}
	if last := steps[len(steps)-1]; last.Err == nil || last.Name != "second create-only put is refused" {
		t.Fatalf("failed step: %+v", last)
	}
	if _, err := fs.Head(context.Background(), "probe/y"); !objstore.IsNotFound(err) {
		t.Fatalf("a failed check left its probe: %v", err)
	}
}
