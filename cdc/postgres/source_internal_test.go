package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/jackc/pglogrepl"
)

// changeID seeds envelope ids: it must stay what fmt made of it, or a
// replay after an upgrade would not dedupe.
func TestChangeIDMatchesFormat(t *testing.T) {
	tests := []struct {
		db    string
		lsn   pglogrepl.LSN
		order int64
	}{
		{"postgres", 0, 0},
		{"fin", 0x16B374D848, 1},
		{"x", 0xFFFFFFFFFFFFFFFF, 123456789},
		{"db_1", 0xABCDEF0012345678, 42},
	}
	for _, tt := range tests {
		t.Run(tt.lsn.String(), func(t *testing.T) {
			want := fmt.Sprintf("pg/%s/%s/%d", tt.db, tt.lsn, tt.order)
			if got := changeID(tt.db, tt.lsn, tt.order); got != want {
				t.Fatalf("changeID = %q, want %q", got, want)
			}
		})
	}
}

// Sequences are strictly increasing in commit order, also for a
// transaction too large for its own range (it pushes the next one's up),
// and an LSN past the range is an error, not a wrapped sequence.
func TestSequenceRangeAndCarry(t *testing.T) {
	st := &stream{s: &Source{log: slog.New(slog.DiscardHandler)}}
	snap, err := snapshotSequence(0x1000)
	if err != nil {
		t.Fatal(err)
	}
	st.lastSeq = snap
	last := snap
	// Transactions committed back to back, minCommitGap bytes apart; the
	// second is far larger than its range.
	for i, n := range []int64{3, 1<<seqTxBits*minCommitGap + 5, 2, 1} {
		base, err := txSequence(0x1000 + pglogrepl.LSN(i*minCommitGap))
		if err != nil {
			t.Fatal(err)
		}
		st.txSeq, st.carried, st.order = base, false, 0
		for range n {
			st.order++
			if seq := st.sequence(); seq <= last {
				t.Fatalf("transaction %d change %d: sequence %d after %d", i, st.order, seq, last)
			} else {
				last = seq
			}
		}
		if st.carried != (i == 2) {
			t.Errorf("transaction %d: carried = %v", i, st.carried)
		}
	}
	if _, err := txSequence(maxSeqLSN); err != nil {
		t.Errorf("txSequence(max) = %v", err)
	}
	if _, err := txSequence(maxSeqLSN + 1); !errors.Is(err, ErrSequenceRange) {
		t.Errorf("txSequence(max+1) = %v, want ErrSequenceRange", err)
	}
	if _, err := snapshotSequence(maxSeqLSN + 1); !errors.Is(err, ErrSequenceRange) {
		t.Errorf("snapshotSequence(max+1) = %v, want ErrSequenceRange", err)
	}
}
