package segments

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Encoders and decoders are pooled: each does one block at a time, on one
// goroutine, so a segment costs no encoder set-up and no goroutines.
var (
	encoders sync.Pool // of *zstd.Encoder
	decoders sync.Pool // of *zstd.Decoder
)

// encoderLevel is the zstd level of the writer; see BenchmarkWriter.
const encoderLevel = zstd.SpeedFastest

// compress appends the zstd frame of src to dst.
func compress(dst, src []byte) ([]byte, error) {
	enc, _ := encoders.Get().(*zstd.Encoder)
	if enc == nil {
		var err error
		enc, err = zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(encoderLevel),
			zstd.WithEncoderCRC(false), // the block has its own CRC
		)
		if err != nil {
			return dst, fmt.Errorf("segments: new zstd encoder: %w", err)
		}
	}
	dst = enc.EncodeAll(src, dst)
	encoders.Put(enc)
	return dst, nil
}

// decompress decodes src into dst[:0], producing at most cap(dst) bytes.
func decompress(dst, src []byte) ([]byte, error) {
	dec, _ := decoders.Get().(*zstd.Decoder)
	if dec == nil {
		var err error
		dec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(maxMaxBlockSize),
			zstd.WithDecoderMaxWindow(maxMaxBlockSize),
			zstd.WithDecodeAllCapLimit(true),
		)
		if err != nil {
			return dst, fmt.Errorf("segments: new zstd decoder: %w", err)
		}
	}
	out, err := dec.DecodeAll(src, dst[:0])
	decoders.Put(dec)
	return out, err
}
