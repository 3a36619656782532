package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// fileRef is one object of base files and the bases whose lists name it.
type fileRef struct {
	key    string
	size   int64
	sha256 string
	bases  []string // file list keys
}

// loadFileLists loads and validates every base's files.json and gathers
// the objects they name. It returns them, and the bases found bad (by file
// list key).
func (v *verifier) loadFileLists(ctx context.Context) (map[string]*fileRef, map[string]bool, error) {
	files, bad := map[string]*fileRef{}, map[string]bool{}
	for _, b := range v.m.Bases {
		fl, err := manifest.LoadFileList(ctx, v.s, v.m, b)
		if err != nil {
			if fatal(ctx, err) {
				return nil, nil, err
			}
			v.rep.add(b.FileList, "%v", err)
			bad[b.FileList] = true
			continue
		}
		v.rep.count(func(r *Report) { r.Bases++ })
		for i, f := range fl.Files {
			ref, seen := files[f.Key]
			if !seen {
				files[f.Key] = &fileRef{key: f.Key, size: f.Size, sha256: f.SHA256, bases: []string{b.FileList}}
				continue
			}
			if ref.size != f.Size || ref.sha256 != f.SHA256 {
				v.rep.add(b.FileList, "files[%d] (%s) says object %s has %d bytes and sha256 %s; %s says %d bytes and sha256 %s",
					i, f.Name, f.Key, f.Size, f.SHA256, ref.bases[0], ref.size, ref.sha256)
				bad[b.FileList] = true
				continue
			}
			ref.bases = append(ref.bases, b.FileList)
		}
	}
	return files, bad, nil
}

// checkFiles reads every object of base files, several at a time, and
// checks its size and SHA-256; the bases that use a bad one are bad.
func (v *verifier) checkFiles(ctx context.Context, files map[string]*fileRef, bad map[string]bool) error {
	keys := slices.Sorted(maps.Keys(files))
	var mu sync.Mutex
	return forEach(ctx, v.opts.Concurrency, len(keys), func(ctx context.Context, i int) error {
		f := files[keys[i]]
		problem, err := v.checkFile(ctx, f)
		if err != nil || problem == "" {
			return err
		}
		v.rep.add(f.key, "%s (named by %s)", problem, strings.Join(f.bases, ", "))
		mu.Lock()
		defer mu.Unlock()
		for _, b := range f.bases {
			bad[b] = true
		}
		return nil
	})
}

// checkFile reads one object with one streaming get and hashes it as it
// arrives: memory stays at one copy buffer. It returns what is wrong, or
// "", and an error only when Verify must stop. A transfer that breaks off
// is read again (readAttempts in all).
func (v *verifier) checkFile(ctx context.Context, f *fileRef) (string, error) {
	for attempt := 1; ; attempt++ {
		problem, err := v.hashFile(ctx, f)
		if err == nil || !isBroken(err) || ctx.Err() != nil {
			return problem, err
		}
		if attempt == readAttempts {
			return "", fmt.Errorf("read %s: %w", f.key, err)
		}
	}
}

// hashFile is one read of checkFile; a broken transfer is an error.
func (v *verifier) hashFile(ctx context.Context, f *fileRef) (string, error) {
	rc, info, err := v.s.Get(ctx, f.key, objstore.GetOptions{})
	if err != nil {
		if fatal(ctx, err) {
			return "", fmt.Errorf("read %s: %w", f.key, err)
		}
		if objstore.IsNotFound(err) {
			return "missing: the object does not exist", nil
		}
		v.rep.count(func(r *Report) { r.missingKey(err) })
		return err.Error(), nil
	}
	defer rc.Close()
	if info.Size != f.size {
		return fmt.Sprintf("%d bytes, files.json says %d", info.Size, f.size), nil
	}
	h := sha256.New()
	var n int64
	_, err = io.Copy(h, &counted{r: io.LimitReader(&sizedBody{r: rc, size: info.Size}, f.size+1), n: &n, progress: v.prog.add})
	if isBroken(err) {
		return "", err
	}
	if err != nil {
		if fatal(ctx, err) {
			return "", fmt.Errorf("read %s: %w", f.key, err)
		}
		return fmt.Sprintf("read after %d bytes: %v", n, err), nil
	}
	v.rep.count(func(r *Report) { r.Files++; r.FileBytes += n })
	if n != f.size {
		return fmt.Sprintf("%d bytes read, files.json says %d", n, f.size), nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.sha256 {
		return fmt.Sprintf("sha256 %s, files.json says %s", got, f.sha256), nil
	}
	return "", nil
}
