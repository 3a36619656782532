package restore

import (
	"context"
	"fmt"
	"io"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/rocks"
)

// maxOptionsSize bounds the OPTIONS file that status reads from a base.
const maxOptionsSize = 16 << 20

// ReplayNeeds reads the OPTIONS file of a base (its file list fl) and
// says what of it rockstream cannot replay by itself: a merge operator or
// comparator of the application's own (rocks.InspectOptionsData). Such a
// base restores only with Options.HandOff or Options.Operators.
func ReplayNeeds(ctx context.Context, s objstore.Store, fl *manifest.FileList) ([]string, error) {
	for _, f := range fl.Files {
		if f.Name != fl.Options {
			continue
		}
		if f.Size > maxOptionsSize {
			return nil, fmt.Errorf("its options file %s is %d bytes, more than %d", f.Key, f.Size, maxOptionsSize)
		}
		rc, _, err := s.Get(ctx, f.Key, objstore.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("read its options file %s: %w", f.Key, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxOptionsSize+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read its options file %s: %w", f.Key, err)
		}
		findings, err := rocks.InspectOptionsData(data, f.Key, nil)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(findings))
		for i, x := range findings {
			out[i] = x.String()
		}
		return out, nil
	}
	return nil, nil
}
