package enricher

import (
	"errors"
	"fmt"
)

// Bounds of the versions [ViewVersion] combines.
const (
	// MaxViewPrimaryVersion is the highest primary version a joined view
	// can carry (2^29-1), so that every view version stays below
	// [TombstoneSequence].
	MaxViewPrimaryVersion int64 = 1<<29 - 1
	// MaxViewJoinedVersions is the highest sum of the joined records'
	// versions a view can carry (2^32-1).
	MaxViewJoinedVersions int64 = 1<<32 - 1
)

// ErrViewVersion is wrapped when the versions of a view's records are
// outside the bounds of [ViewVersion].
var ErrViewVersion = errors.New("enricher: view version out of range")

// ViewVersion returns the version of a view built from a primary record
// at version primary and joined records at the versions joined (joined
// tombstones included): primary*2^32 + the sum of joined. It is the
// sequence of a joining enricher's outputs, and so the external version
// of the view in the sinks.
//
// It depends on nothing but the records, so replicas and retries agree
// (the output's id is derived from it), and it grows whenever a record
// the view is built from changes:
//
//   - the primary changed: its version grew, and it outweighs every sum
//     of joined versions, so the view grows even when the new primary
//     joins other records with lower versions (a join target replaced by
//     another record: a title moved to another schedule);
//   - a joined record changed (a schedule change fanned out to its title):
//     the primary is the same, so are its join keys, and the joined
//     record's version grew, and with it the sum;
//   - a joined record was removed: the sum grows only if the joined
//     resolver returns the removal as a tombstone ([Record.Deleted]) with
//     the delete's version. A resolver that just leaves it out makes the
//     view's version drop by the removed record's version, and the sinks
//     keep the view with the removed record until the next change of the
//     primary.
//
// This holds when each owner's versions grow per key, deletes included
// (a re-created entity continues from its delete's version), as the
// envelope's sequence requires. A DELETE of the view carries
// ViewVersion(the delete's version), above every view of an older
// primary.
//
// Versions must be at least 0, primary at most [MaxViewPrimaryVersion]
// and the sum at most [MaxViewJoinedVersions]; outside, the error wraps
// [ErrViewVersion] (row versions fit; log positions or timestamps used as
// versions do not, and need no joins or a resolver that maps them to row
// versions).
func ViewVersion(primary int64, joined ...int64) (int64, error) {
	if primary < 0 || primary > MaxViewPrimaryVersion {
		return 0, fmt.Errorf("%w: primary version %d, need 0 to %d", ErrViewVersion, primary, MaxViewPrimaryVersion)
	}
	var sum int64
	for _, v := range joined {
		if v < 0 || v > MaxViewJoinedVersions-sum {
			return 0, fmt.Errorf("%w: joined versions %v, need each at least 0 and a sum of at most %d", ErrViewVersion, joined, MaxViewJoinedVersions)
		}
		sum += v
	}
	return primary<<32 | sum, nil
}
