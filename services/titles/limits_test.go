package titles_test

import (
	"strings"
	"testing"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slatehq/slate/services/titles"
)

// Every request's ids are checked, not only a create's: an id no title can
// have is InvalidArgument, and the message quotes it truncated.
func TestRequestIDLimits(t *testing.T) {
	ctx := ctxT(t)
	c := serve(t, &recorder{})
	long := strings.Repeat("x", 200<<10)
	v := int64(1)
	calls := map[string]func(id string) error{
		"GetTitle": func(id string) error {
			_, err := c.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: id})
			return err
		},
		"DeleteTitle": func(id string) error {
			_, err := c.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: id, ExpectedVersion: &v})
			return err
		},
		"UpdateTitle": func(id string) error {
			tl := feature("Name")
			tl.Id = id
			_, err := c.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: tl})
			return err
		},
		"BatchGetTitles": func(id string) error {
			_, err := c.BatchGetTitles(ctx, &titlesv1.BatchGetTitlesRequest{Ids: []string{"ok", id}})
			return err
		},
	}
	for name, call := range calls {
		for _, id := range []string{long, strings.Repeat("y", titles.MaxIDLen+1), "a\x00b", "a b"} {
			err := call(id)
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s with a %d-byte id: code %v (%v), want InvalidArgument", name, len(id), status.Code(err), err)
				continue
			}
			if msg := status.Convert(err).Message(); len(msg) > 256 {
				t.Errorf("%s with a %d-byte id: message of %d bytes echoes the id", name, len(id), len(msg))
			}
		}
	}
}

// A request larger than the server reads is refused before it is decoded.
func TestRequestSizeLimit(t *testing.T) {
	ctx := ctxT(t)
	c := serve(t, &recorder{})
	_, err := c.BatchGetTitles(ctx, &titlesv1.BatchGetTitlesRequest{Ids: []string{strings.Repeat("x", 3<<20)}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("3 MiB request: code %v (%v), want ResourceExhausted", status.Code(err), err)
	}
	if _, err := c.BatchGetTitles(ctx, &titlesv1.BatchGetTitlesRequest{Ids: []string{"a"}}); err != nil {
		t.Fatalf("small request after a refused one: %v", err)
	}
}
