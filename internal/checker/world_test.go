package checker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/enricher"
)

var (
	titleSchema = avro.MustParse(`{"type":"record","name":"Title","namespace":"checker.v1","fields":[
		{"name":"id","type":"string"},{"name":"name","type":"string"},{"name":"version","type":"long"}]}`).(*avro.RecordSchema)
	scheduleSchema = avro.MustParse(`{"type":"record","name":"Schedule","namespace":"checker.v1","fields":[
		{"name":"id","type":"string"},{"name":"title_id","type":"string"},{"name":"shoot_days","type":"int"}]}`).(*avro.RecordSchema)
)

type title struct {
	ID      string `avro:"id"`
	Name    string `avro:"name"`
	Version int64  `avro:"version"`
}

type schedule struct {
	ID        string `avro:"id"`
	TitleID   string `avro:"title_id"`
	ShootDays int    `avro:"shoot_days"`
}

// Features switches the scenario's parts on one by one.
type Features struct {
	Deletes    bool // deletes and re-creates of titles
	Reorder    bool // publishes of a burst land shuffled
	Duplicates bool // some publishes are sent twice
	Seq0       bool // some publishes carry sequence 0 (no version)
	FanOut     bool // schedule changes re-materialize the titles joined with them
	Restarts   bool // enricher and sink consumers are stopped and restarted mid-run
	Rebalance  bool // a second member joins and leaves each group
	Refusals   bool // the search sink refuses some events for good; their dead letters are replayed
	Outages    bool // the search sinks are unavailable for a while
	Kills      bool // the sink consumer dies mid-write, the enricher mid-publish
}

var featureNames = []string{"deletes", "reorder", "duplicates", "seq0", "fanout", "restarts", "rebalance", "refusals", "outages", "kills"}

func (f *Features) flags() []*bool {
	return []*bool{&f.Deletes, &f.Reorder, &f.Duplicates, &f.Seq0, &f.FanOut, &f.Restarts, &f.Rebalance, &f.Refusals, &f.Outages, &f.Kills}
}

// allFeatures returns every feature on but those named in without (a comma
// separated list).
func allFeatures(without string) (Features, error) {
	var f Features
	for _, p := range f.flags() {
		*p = true
	}
	for _, name := range strings.Split(without, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		i := indexOf(featureNames, name)
		if i < 0 {
			return f, fmt.Errorf("-without: unknown feature %q (have %s)", name, strings.Join(featureNames, ","))
		}
		*f.flags()[i] = false
	}
	return f, nil
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

func (f Features) String() string {
	var on []string
	for i, p := range f.flags() {
		if *p {
			on = append(on, featureNames[i])
		}
	}
	return strings.Join(on, ",")
}

// Config is one run.
type Config struct {
	Seed      uint64
	Titles    int // key space
	Schedules int
	Ops       int
	Features  Features
}

// redis reports whether the run's dedupe store is Redis (even seeds, when
// SLATE_REDIS_ADDR is set) rather than the in-memory store.
func (c Config) redis() bool { return c.Seed%2 == 0 }

// syncCommit reports whether the run's consumers commit synchronously
// after every batch (odd seeds) rather than in the background.
func (c Config) syncCommit() bool { return c.Seed%2 == 1 }

// op is one generated operation.
type op struct {
	Kind string // put, del, sched, burst, restart, join, leave, refuse, outage, kill, ekill
	ID   string
	Seq  int64 // the sequence published (0 when the publish carries none)
	Dup  bool
	Val  int
}

func (o op) String() string {
	switch o.Kind {
	case "restart", "join", "leave", "burst", "refuse", "kill", "ekill":
		return o.Kind
	case "outage":
		return fmt.Sprintf("outage(%dms)", o.Val)
	}
	s := fmt.Sprintf("%s(%s,seq=%d,v=%d)", o.Kind, o.ID, o.Seq, o.Val)
	if o.Dup {
		s += "x2"
	}
	return s
}

// generate draws the run's operations from cfg.Seed.
func generate(cfg Config) []op {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5a7e))
	f := cfg.Features
	version := map[string]int64{}
	alive := map[string]bool{}
	var ops []op
	for len(ops) < cfg.Ops {
		n := r.IntN(100)
		id := fmt.Sprintf("t%d", r.IntN(cfg.Titles))
		o := op{Kind: "put", ID: id, Val: r.IntN(1000)}
		switch {
		case f.FanOut && n < 20:
			o = op{Kind: "sched", ID: fmt.Sprintf("s%d", r.IntN(cfg.Schedules)), Val: 1 + r.IntN(90)}
		case f.Deletes && n < 35 && alive[id]:
			o.Kind = "del"
		case f.Reorder && n < 42:
			o = op{Kind: "burst"}
		case f.Restarts && n < 44:
			o = op{Kind: "restart"}
		case f.Rebalance && n < 46:
			o = op{Kind: "join"}
			if r.IntN(2) == 0 {
				o.Kind = "leave"
			}
		case f.Refusals && n < 48:
			o = op{Kind: "refuse"}
		case f.Outages && n < 50:
			o = op{Kind: "outage", Val: 20 + r.IntN(200)}
		case f.Kills && n < 52:
			o = op{Kind: "kill"}
			if r.IntN(2) == 0 {
				o.Kind = "ekill"
			}
		}
		switch o.Kind {
		case "put", "del":
			version[id]++
			alive[id] = o.Kind == "put"
			o.Seq = version[id]
			if f.Seq0 && r.IntN(4) == 0 {
				o.Seq = 0
			}
		case "sched":
			// Above the initial version 1 of every schedule, growing per key.
			o.Seq = int64(len(ops) + 2)
		}
		if f.Duplicates && o.ID != "" && r.IntN(5) == 0 {
			o.Dup = true
		}
		ops = append(ops, o)
	}
	return ops
}

// world is the source of truth the resolvers answer from.
type world struct {
	mu        sync.Mutex
	titles    map[string]*title // nil: deleted
	version   map[string]int64  // per title, deletes included
	schedules map[string]schedule
	schedVer  map[string]int64
	byTitle   map[string][]string
}

func newWorld(cfg Config) *world {
	w := &world{titles: map[string]*title{}, version: map[string]int64{}, schedules: map[string]schedule{},
		schedVer: map[string]int64{}, byTitle: map[string][]string{}}
	for i := range cfg.Schedules {
		s := schedule{ID: fmt.Sprintf("s%d", i), TitleID: fmt.Sprintf("t%d", i%cfg.Titles), ShootDays: 1}
		w.schedules[s.ID] = s
		w.schedVer[s.ID] = 1
		w.byTitle[s.TitleID] = append(w.byTitle[s.TitleID], s.ID)
	}
	return w
}

func (w *world) apply(o op) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch o.Kind {
	case "put":
		w.version[o.ID]++
		w.titles[o.ID] = &title{ID: o.ID, Name: fmt.Sprintf("n%d", o.Val), Version: w.version[o.ID]}
	case "del":
		w.version[o.ID]++
		w.titles[o.ID] = nil
	case "sched":
		s := w.schedules[o.ID]
		s.ShootDays = o.Val
		w.schedules[o.ID] = s
		w.schedVer[o.ID] = o.Seq
	}
}

// resolveTitles answers with the current titles, and with a tombstone at
// the delete's version for a deleted one.
func (w *world) resolveTitles(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]enricher.Record{}
	for _, id := range ids {
		t, ok := w.titles[id]
		switch {
		case t != nil:
			out[id] = enricher.Record{Version: t.Version, Schema: titleSchema, Value: *t}
		case ok:
			out[id] = enricher.Record{Version: w.version[id], Deleted: true}
		}
	}
	return out, nil
}

func (w *world) resolveSchedules(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]enricher.Record{}
	for _, id := range ids {
		if s, ok := w.schedules[id]; ok {
			out[id] = enricher.Record{Version: w.schedVer[id], Schema: scheduleSchema, Value: s}
		}
	}
	return out, nil
}

func (w *world) dependents(_ context.Context, ids []string) (map[string][]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]string{}
	for _, id := range ids {
		if s, ok := w.schedules[id]; ok {
			out[id] = []string{s.TitleID}
		}
	}
	return out, nil
}

func (w *world) scheduleKeys(id string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byTitle[id]
}

// want is the expected view of one title.
type want struct {
	alive   bool
	version int64 // the view's version: the title's, or enricher.ViewVersion of it and its schedules
	name    string
	days    []int
}

func (w *world) expected(joined bool) map[string]want {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]want{}
	for id, t := range w.titles {
		if t == nil {
			out[id] = want{}
			continue
		}
		v := want{alive: true, version: t.Version, name: t.Name}
		if joined {
			var vs []int64
			for _, sid := range w.byTitle[id] {
				v.days = append(v.days, w.schedules[sid].ShootDays)
				vs = append(vs, w.schedVer[sid])
			}
			v.version, _ = enricher.ViewVersion(t.Version, vs...)
			if v.days == nil {
				v.days = []int{}
			}
		}
		out[id] = v
	}
	return out
}
