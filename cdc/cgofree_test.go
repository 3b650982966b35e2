package cdc_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoKafkaClientDependency checks that the CDC packages, the outbox
// writer and the publishing contracts build without confluent-kafka-go
// (and so without cgo and librdkafka): a CDC sidecar can publish through
// any client that implements publish.Publisher. cdc/cdctest is left out:
// it is the sources' test suite and runs them through a real producer.
func TestNoKafkaClientDependency(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	const mod = "github.com/slatehq/slate/"
	out, err := exec.Command(gobin, "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}",
		mod+"cdc/...", mod+"outbox", mod+"publish").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] == mod+"cdc/cdctest" {
			continue
		}
		checked++
		for _, dep := range fields[1:] {
			if strings.HasPrefix(dep, "github.com/confluentinc/confluent-kafka-go") {
				t.Errorf("%s depends on %s; it must build without the cgo Kafka client (see go list -deps %s)", fields[0], dep, fields[0])
				break
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d packages, want at least cdc, cdc/postgres, cdc/mysql, outbox and publish:\n%s", checked, out)
	}
}
