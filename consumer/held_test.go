package consumer_test

import (
	"testing"
	"time"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/testenv"
)

// An event whose id another consumer claimed and never finished (it died
// between its claim and its done marker) is not dropped as a duplicate: the
// batch waits, and applies the event once the dead claim's lease ran out.
func TestHeldClaimWaitsForLeaseInsteadOfDropping(t *testing.T) {
	f := setup(t)
	topic := "studio.title.materialized.held"
	store := dedupe.NewMemory()
	defer store.Close()
	envs := titleEvents(3, "held")
	// Longer than joining the group takes on a loaded machine, so that the
	// consumer meets the claim while it is still held.
	const lease = 6 * time.Second
	// The dead consumer's claim on the second event.
	st, err := store.Claim(t.Context(), []string{envs[1].ID}, lease)
	if err != nil || st[0] != dedupe.Fresh {
		t.Fatalf("claim = %v, %v", st, err)
	}
	claimed := time.Now()
	var c collector
	h := consumer.Deduplicate(store, consumer.DedupeConfig{Group: "held", Lease: lease}, &c)
	run(t, f, h, topic)
	if err := f.pub.Publish(t.Context(), topic, envs...); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the held event applied after the lease", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ev := range c.events {
			if ev.ID == envs[1].ID {
				return true
			}
		}
		return false
	})
	if el := time.Since(claimed); el < lease {
		t.Errorf("held event applied %s after the claim, before its %s lease ran out", el, lease)
	}
	if c.count() != 3 {
		t.Errorf("%d events applied, want 3 (each once)", c.count())
	}
	if v := metric(t, "slate_consumer_dedupe_held_total", map[string]string{"group": "held"}); v < 1 {
		t.Errorf("slate_consumer_dedupe_held_total = %v, want at least 1", v)
	}
}
