package prune

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// View is what a plan is made from: the manifest, the segments of its
// timelines, and the objects under bases/ with the file lists among them.
// Planning reads nothing else; a run fills it from a store, tests by hand.
type View struct {
	Manifest *manifest.Manifest
	ETag     string
	// Segments holds each timeline's segments in sequence order, as
	// catalog.Load lists them.
	Segments map[uint32][]catalog.Segment
	// BaseObjects is every object under bases/, by key.
	BaseObjects map[string]objstore.ObjectInfo
	// Lists holds the file list of every named base, and of every other
	// files.json under bases/ that could be read, by key.
	Lists map[string]*manifest.FileList
	// Unreadable holds the files.json under bases/ that the manifest does
	// not name and that could not be read, with the error: while there is
	// one, no SST file is deleted (it might name any).
	Unreadable map[string]error
	// Pending holds each key that a pending record holds already: a plan
	// leaves them to their record.
	Pending map[string]Pending
}

// Pending says which pending records hold a key.
type Pending struct {
	// Record is the one that holds it longest, until Due.
	Record string
	Due    time.Time
	// Created is when the newest record that holds it was written.
	Created time.Time
}

// listCache keeps the file lists read by a run, each with the ETag it
// was read at: an unnamed list can be replaced (manifest.ReplaceFileList,
// by an archiver that fenced another), so a list is reused only while the
// listing shows the same ETag.
type listCache map[string]cachedList

type cachedList struct {
	fl   *manifest.FileList
	etag string
}

// get returns the cached list at key when the listing in v shows it with
// the ETag it was read at.
func (c listCache) get(v *View, key string) *manifest.FileList {
	e, ok := c[key]
	if !ok || e.etag == "" || e.etag != v.BaseObjects[key].ETag {
		return nil
	}
	return e.fl
}

// scan reads the view of the archive in s: the manifest, the segments, the
// objects under bases/, the file list of every named base (a bad one is an
// error), and every other files.json under bases/, reusing the lists in
// cache. Pending is left for the caller to fill.
func scan(ctx context.Context, s objstore.Store, cache listCache) (*View, error) {
	c, err := catalog.Load(ctx, s)
	if err != nil {
		return nil, err
	}
	v := &View{Manifest: c.Manifest, ETag: c.ETag, Segments: c.Segments, BaseObjects: map[string]objstore.ObjectInfo{},
		Lists: map[string]*manifest.FileList{}, Unreadable: map[string]error{}}
	for info, err := range s.List(ctx, manifest.BasesPrefix, "") {
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", manifest.BasesPrefix, err)
		}
		v.BaseObjects[info.Key] = info
	}
	for _, b := range v.Manifest.Bases {
		fl := cache.get(v, b.FileList)
		if fl == nil {
			if fl, err = manifest.LoadFileList(ctx, s, v.Manifest, b); err != nil {
				return nil, err
			}
			// Read after the listing: a list replaced since shows
			// another ETag at the next scan, which reads it again.
			cache[b.FileList] = cachedList{fl: fl, etag: v.BaseObjects[b.FileList].ETag}
		}
		v.Lists[b.FileList] = fl
	}
	for key := range v.BaseObjects {
		if !strings.HasSuffix(key, "/"+manifest.FileListName) || v.Lists[key] != nil {
			continue
		}
		if err := v.readUnnamed(ctx, s, key, cache); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// readUnnamed reads a files.json that the manifest does not name: a base
// being uploaded, or one dropped by a prune that stopped before its record.
// A list that cannot be read is noted in Unreadable; only a store that
// fails stops the scan.
func (v *View) readUnnamed(ctx context.Context, s objstore.Store, key string, cache listCache) error {
	if fl := cache.get(v, key); fl != nil {
		v.Lists[key] = fl
		return nil
	}
	fl, etag, err := manifest.ReadFileList(ctx, s, key)
	switch {
	case objstore.IsNotFound(err):
		delete(v.BaseObjects, key) // deleted since the listing
	case errors.Is(err, manifest.ErrInvalid):
		v.Unreadable[key] = err
	case err != nil:
		return err
	default:
		v.Lists[key], cache[key] = fl, cachedList{fl: fl, etag: etag}
	}
	return nil
}

// modTime is when the object key under bases/ was last written, or the
// zero time when it is not there.
func (v *View) modTime(key string) time.Time {
	return v.BaseObjects[key].ModTime
}

// dying reports whether the file list at key is one that a pending record
// deletes: the manifest does not name it, and it was not written again
// after the record. Its SST files are then no reason to keep them.
func (v *View) dying(key string) bool {
	if _, ok := v.Pending[key]; !ok || named(v.Manifest, key) {
		return false
	}
	return !v.modTime(key).After(v.Pending[key].Created)
}
