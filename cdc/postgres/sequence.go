package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
)

// Envelope sequences. Sinks keep the highest sequence of each entity and
// refuse anything at or below it (Elasticsearch external versions), so a
// sequence must follow commit order, not the order changes were written
// in: a transaction that began before another and commits after it must
// order after all of its changes, and a transaction that wrote before the
// snapshot's consistent point but commits after it must order after the
// snapshot. A change's sequence is therefore
//
//	commit LSN << seqTxBits + position of the change in its transaction (from 1)
//
// and a snapshot row's is consistent point << seqTxBits - 1: every
// streamed transaction commits at or after the consistent point, so its
// changes order after every snapshot row.
//
// The first 1<<seqTxBits changes of a transaction fit below the next
// possible commit LSN's sequences by construction. Larger transactions
// still order correctly in practice (two commit records are at least
// minCommitGap bytes of WAL apart, so the next transaction's sequences
// begin at least minCommitGap<<seqTxBits above this one's base); and when
// a transaction's sequences would still reach the next one's, the next
// one continues from the last sequence handed out plus one, so sequences
// are strictly increasing in every case. That carry is the only part that
// depends on what the source emitted before: a replay after a restart
// gives the transactions after such a giant one their uncarried, lower
// sequences, which sinks refuse as not newer (they hold those changes
// already).
const (
	seqTxBits    = 12
	minCommitGap = 32
	// maxSeqLSN is the highest LSN a sequence can be made of (2 PiB of
	// WAL): int64 sequences, seqTxBits of them for the position.
	maxSeqLSN = pglogrepl.LSN(1)<<(63-seqTxBits) - 1
)

// ErrSequenceRange is returned by Run when the server's LSN is past
// maxSeqLSN, where envelope sequences would overflow.
var ErrSequenceRange = errors.New("postgres: LSN past the range of envelope sequences")

// txSequence returns the sequence base of a transaction committed at
// commit; its changes take base + their position.
func txSequence(commit pglogrepl.LSN) (int64, error) {
	if commit > maxSeqLSN {
		return 0, fmt.Errorf("%w: commit LSN %s, highest %s", ErrSequenceRange, commit, maxSeqLSN)
	}
	return int64(commit) << seqTxBits, nil
}

// snapshotSequence returns the sequence of the snapshot rows read at the
// consistent point cp: one below any streamed change's.
func snapshotSequence(cp pglogrepl.LSN) (int64, error) {
	if cp > maxSeqLSN {
		return 0, fmt.Errorf("%w: consistent point %s, highest %s", ErrSequenceRange, cp, maxSeqLSN)
	}
	return int64(cp)<<seqTxBits - 1, nil
}
