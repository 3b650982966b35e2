package hive_test

import (
	"testing"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/hive"
	"github.com/slatehq/slate/consumer/sink/sinktest"
)

func TestContract(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) (sink.Sink, sinktest.Reader) {
		s, err := hive.New(t.TempDir(), "audit")
		if err != nil {
			t.Fatal(err)
		}
		return s, newDuckReader(t, s.Dir())
	})
}
