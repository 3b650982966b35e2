package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MagicByte opens every Confluent wire-format message.
const MagicByte byte = 0

// ErrNotWireFormat is wrapped when bytes are not Confluent-framed.
var ErrNotWireFormat = errors.New("schema: not in Confluent wire format")

// Frame prepends the Confluent header (magic byte, big-endian schema id) to
// an Avro payload, appending to dst.
func Frame(dst []byte, id int, payload []byte) []byte {
	dst = append(dst, MagicByte, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(id))
	return append(dst, payload...)
}

// Unframe splits Confluent-framed bytes into schema id and Avro payload.
// The payload aliases b.
func Unframe(b []byte) (id int, payload []byte, err error) {
	if len(b) < 5 {
		return 0, nil, fmt.Errorf("%w: %d bytes, need at least 5", ErrNotWireFormat, len(b))
	}
	if b[0] != MagicByte {
		return 0, nil, fmt.Errorf("%w: magic byte %#x", ErrNotWireFormat, b[0])
	}
	return int(binary.BigEndian.Uint32(b[1:5])), b[5:], nil
}
