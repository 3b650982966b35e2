package titles

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/services/internal/service"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// EntityType is the entity type of every change event the service
// publishes; its changes topic is studio.title.changes.
const EntityType = "title"

// Limits on request sizes.
const (
	// MaxBatchGet is the most ids one BatchGetTitles call may name.
	MaxBatchGet = service.MaxBatchGet
	// MaxIDLen is the longest id, in bytes, a create may choose.
	MaxIDLen = service.MaxIDLen
	// MaxNameLen is the longest name, in bytes.
	MaxNameLen = 512
)

// ReleaseDateLayout is the layout of Title.ReleaseDate (YYYY-MM-DD).
const ReleaseDateLayout = time.DateOnly

// The kinds of title.
const (
	KindFeature = "FEATURE"
	KindSeries  = "SERIES"
	KindSeason  = "SEASON"
	KindEpisode = "EPISODE"
)

// The production statuses of a title.
const (
	StatusDevelopment = "DEVELOPMENT"
	StatusProduction  = "PRODUCTION"
	StatusPost        = "POST"
	StatusReleased    = "RELEASED"
)

var (
	kinds    = []string{KindFeature, KindSeries, KindSeason, KindEpisode}
	statuses = []string{StatusDevelopment, StatusProduction, StatusPost, StatusReleased}
)

// Kinds returns the valid values of Title.Kind.
func Kinds() []string { return slices.Clone(kinds) }

// Statuses returns the valid values of Title.Status.
func Statuses() []string { return slices.Clone(statuses) }

// Title is a title as a [Store] keeps it.
type Title struct {
	ID          string
	Name        string
	Kind        string
	Status      string
	ReleaseDate string // YYYY-MM-DD, or empty while unscheduled
	Version     int64
	UpdatedAt   time.Time
}

// Validate checks the fields a caller sets (not ID, Version or UpdatedAt)
// and returns a [*FieldError] naming the first bad one.
func (t *Title) Validate() error {
	switch {
	case strings.TrimSpace(t.Name) == "":
		return &FieldError{Field: "name", Reason: "must not be empty"}
	case len(t.Name) > MaxNameLen:
		return &FieldError{Field: "name", Reason: "longer than 512 bytes"}
	case !utf8.ValidString(t.Name):
		return &FieldError{Field: "name", Reason: "not valid UTF-8"}
	case !slices.Contains(kinds, t.Kind):
		return &FieldError{Field: "kind", Reason: service.Quote(t.Kind) + " is not one of " + strings.Join(kinds, ", ")}
	case !slices.Contains(statuses, t.Status):
		return &FieldError{Field: "status", Reason: service.Quote(t.Status) + " is not one of " + strings.Join(statuses, ", ")}
	}
	if t.ReleaseDate != "" {
		if _, err := time.Parse(ReleaseDateLayout, t.ReleaseDate); err != nil {
			return &FieldError{Field: "release_date", Reason: service.Quote(t.ReleaseDate) + " is not a date in YYYY-MM-DD form"}
		}
	}
	return nil
}

// validateNewID checks an id a caller chose for a new title: it becomes a
// Kafka key, a search document id and a URL path segment, so it must be
// short and free of spaces and control characters.
func validateNewID(id string) error {
	switch {
	case len(id) > MaxIDLen:
		return &FieldError{Field: "title.id", Reason: "longer than 128 bytes"}
	case !utf8.ValidString(id):
		return &FieldError{Field: "title.id", Reason: "not valid UTF-8"}
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return &FieldError{Field: "title.id", Reason: "contains a space or a control character"}
	}
	return nil
}

// fromProto copies the caller-set fields of m.
func fromProto(m *titlesv1.Title) Title {
	return Title{
		ID:          m.GetId(),
		Name:        m.GetName(),
		Kind:        m.GetKind(),
		Status:      m.GetStatus(),
		ReleaseDate: m.GetReleaseDate(),
	}
}

func toProto(t Title) *titlesv1.Title {
	m := &titlesv1.Title{
		Id:          t.ID,
		Name:        t.Name,
		Kind:        t.Kind,
		Status:      t.Status,
		ReleaseDate: t.ReleaseDate,
		Version:     t.Version,
	}
	if !t.UpdatedAt.IsZero() {
		m.UpdatedAt = timestamppb.New(t.UpdatedAt)
	}
	return m
}
