package manifest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/rockstream/rockstream/objstore"
)

// Limits of a pending record of `rockstream prune`.
const (
	// MaxPruneObjects is the largest number of objects in one pending
	// record; a prune that deletes more writes several records.
	MaxPruneObjects = 100_000
	// MaxPruneRecordSize is the largest pending record that
	// LoadPruneRecord reads.
	MaxPruneRecordSize = 64 << 20
)

// PruneRecord is the content of a pending record, prune/<...>.json: the
// objects that a prune will delete once its grace period is over, and why.
// It is written once (if-none-match) before the manifest commit that stops
// naming the bases it drops, so that every drop a reader of the manifest
// can see has its record (a record whose commit lost names objects the
// manifest still needs, which its sweep keeps), and deleted when its
// objects are gone.
type PruneRecord struct {
	// Format is the version of this document: Format (1).
	Format int `json:"format"`
	// Created is when the record was written; its key holds the same time.
	Created time.Time `json:"created"`
	// NotBefore is the earliest time at which its objects may be deleted:
	// Created plus the grace of the prune that wrote it plus an allowance
	// for the manifest commit that follows the record (the smaller of the
	// grace and 10 s); not before Created.
	NotBefore time.Time `json:"not_before"`
	// Policy is the retention policy that chose the objects, for people.
	Policy string `json:"policy"`
	// Objects are the keys to delete.
	Objects []PruneObject `json:"objects"`
}

// PruneObject is one object of a pending record.
type PruneObject struct {
	// Key is a segment key, a key under a base's prefix (its files.json
	// included) or an SST key: never any other object.
	Key string `json:"key"`
	// Why says, for people, why the object goes.
	Why string `json:"why"`
}

// ParsePruneRecord decodes and validates a pending record.
func ParsePruneRecord(data []byte) (*PruneRecord, error) {
	var r PruneRecord
	if err := decodeStrict(data, MaxPruneRecordSize, Format, &r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks every rule of the pending record format; the error is a
// *ValidationError naming the first bad field.
func (r *PruneRecord) Validate() error {
	switch {
	case r.Format != Format:
		return invalid("format", "version %d is not supported: this rockstream reads format %d", r.Format, Format)
	case r.Created.IsZero() || r.Created.Unix() < 0:
		return invalid("created", "missing or before 1970")
	case r.NotBefore.Before(r.Created):
		return invalid("not_before", "%s is before created %s", r.NotBefore.Format(time.RFC3339Nano), r.Created.Format(time.RFC3339Nano))
	case len(r.Objects) < 1 || len(r.Objects) > MaxPruneObjects:
		return invalid("objects", "%d entries, not between 1 and %d", len(r.Objects), MaxPruneObjects)
	}
	if err := checkText("policy", r.Policy, 1, maxReasonLen); err != nil {
		return err
	}
	seen := make(map[string]int, len(r.Objects))
	for i, o := range r.Objects {
		field := fmt.Sprintf("objects[%d]", i)
		if err := CheckPrunable(o.Key); err != nil {
			return invalid(field+".key", "%v", err)
		}
		if j, dup := seen[o.Key]; dup {
			return invalid(field+".key", "%s is also objects[%d]", short(o.Key), j)
		}
		seen[o.Key] = i
		if err := checkText(field+".why", o.Why, 1, maxReasonLen); err != nil {
			return err
		}
	}
	return nil
}

// CheckPrunable checks that key is an object that a prune may delete: a
// segment key, a key under a base's prefix or an SST key, exactly as the
// layout builds them. The manifest, probe objects, pending records and any
// other key are refused.
func CheckPrunable(key string) error {
	if p := keyProblem(key); p != "" {
		return &ValidationError{Field: "key", Reason: p}
	}
	switch {
	case strings.HasPrefix(key, SegmentsPrefix):
		_, _, err := ParseSegmentKey(key)
		return err
	case strings.HasPrefix(key, BasesPrefix):
		_, _, _, err := ParseBaseFileKey(key)
		return err
	case strings.HasPrefix(key, SSTPrefix):
		_, err := ParseSSTKey(key)
		return err
	}
	return &ValidationError{Field: "key", Reason: fmt.Sprintf("%s is not a segment, base or SST key: prune never deletes it", short(key))}
}

// LoadPruneRecord reads and validates the pending record at key, and
// checks that its creation time is the one its key holds.
func LoadPruneRecord(ctx context.Context, s objstore.Store, key string) (*PruneRecord, error) {
	created, err := ParsePruneRecordKey(key)
	if err != nil {
		return nil, fmt.Errorf("load prune record %s: %w", short(key), err)
	}
	data, _, err := readObject(ctx, s, key, "", MaxPruneRecordSize)
	if err != nil {
		return nil, fmt.Errorf("load prune record %s: %w", key, err)
	}
	r, err := ParsePruneRecord(data)
	if err == nil && !r.Created.Equal(created) {
		err = invalid("created", "%s, but the key says %s", r.Created.Format(time.RFC3339Nano), created.Format(time.RFC3339Nano))
	}
	if err != nil {
		return nil, fmt.Errorf("load prune record %s from %s: %w", key, s, err)
	}
	return r, nil
}

// PutPruneRecord validates r, writes it create-only at a new key for its
// creation time, and returns the key.
func PutPruneRecord(ctx context.Context, s objstore.Store, r *PruneRecord) (string, error) {
	r.Created = r.Created.UTC()
	r.NotBefore = r.NotBefore.UTC()
	if err := r.Validate(); err != nil {
		return "", fmt.Errorf("put prune record: %w", err)
	}
	data, err := marshal(r)
	if err != nil {
		return "", fmt.Errorf("put prune record: %w", err)
	}
	for attempt := 0; ; attempt++ {
		var b [4]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		key := PruneRecordKey(r.Created, binary.BigEndian.Uint32(b[:]))
		_, err = s.Put(ctx, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{IfNoneMatch: true})
		if objstore.IsPreconditionFailed(err) && sameBytes(ctx, s, key, data) {
			return key, nil // an earlier attempt of this put was applied
		}
		if !objstore.IsPreconditionFailed(err) || attempt == 3 {
			if err != nil {
				return "", fmt.Errorf("put prune record %s: %w", key, err)
			}
			return key, nil
		}
	}
}
