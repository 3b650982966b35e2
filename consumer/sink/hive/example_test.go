package hive_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/hive"
	"github.com/slatehq/slate/schema"
)

func ExampleNew() {
	ctx := context.Background()
	root, _ := os.MkdirTemp("", "lake")
	defer os.RemoveAll(root)

	s, err := hive.New(root, "studio_audit")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close(ctx)

	e := schema.NewEnvelope("//studio/schedule", schema.OpUpdate, "schedule", "sched-42")
	e.Time = time.Date(2024, 5, 1, 13, 5, 0, 0, time.UTC)
	e.DataContentType = schema.ContentTypeJSON
	e.Data = []byte(`{"release":"2024-07-01"}`)
	batch := []sink.Event{
		{Envelope: e, Topic: "studio.schedule.materialized", Partition: 2, Offset: 1041},
	}
	if err := s.Write(ctx, batch); err != nil {
		fmt.Println(err)
		return
	}
	_ = filepath.WalkDir(s.Dir(), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(s.Dir(), path)
			fmt.Println(filepath.ToSlash(rel))
		}
		return err
	})
	// Output:
	// _hive.sql
	// dt=2024-05-01/hour=13/part-studio.schedule.materialized-2-1041-1041.parquet
}
