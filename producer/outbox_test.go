package producer_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/outbox"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// TestNewOutboxValidates checks that the producer's outbox constructor
// refuses what outbox.New refuses, with errors that match both packages'
// ErrConfig.
func TestNewOutboxValidates(t *testing.T) {
	_, reg := testenv.Registry(t)
	codec, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		codec  *schema.Codec
		source string
		want   string
	}{
		{"no codec", nil, "//s", "codec is nil"},
		{"no source", codec, "", "source is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := producer.NewOutbox(tt.codec, tt.source)
			if !errors.Is(err, producer.ErrConfig) || !errors.Is(err, outbox.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrConfig saying %q", err, tt.want)
			}
		})
	}
	o, err := producer.NewOutbox(codec, "//studio/titles")
	if err != nil {
		t.Fatal(err)
	}
	if e := o.NewChange(t.Context(), "title", "t-1", schema.OpUpdate, 3); e.Source != "//studio/titles" || e.Sequence != 3 {
		t.Fatalf("change = %+v, want source //studio/titles, sequence 3", e)
	}
}
