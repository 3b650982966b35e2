package postgres

import (
	"fmt"
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
