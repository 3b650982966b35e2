package service_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/slatehq/slate/services/internal/service"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestToStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{&service.FieldError{Field: "budget.title_id", Reason: "must not be empty"}, codes.InvalidArgument},
		{fmt.Errorf("budget %w: t1", service.ErrNotFound), codes.NotFound},
		{fmt.Errorf("%w: title t1", service.ErrExists), codes.AlreadyExists},
		{fmt.Errorf("budget %w: t1 is at 3", service.ErrVersionMismatch), codes.FailedPrecondition},
		{fmt.Errorf("%w: broker down", service.ErrPublish), codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{errors.New("disk full"), codes.Internal},
	} {
		st := status.Convert(service.ToStatus("finance", tc.err))
		if st.Code() != tc.want || !strings.HasPrefix(st.Message(), "finance: ") && tc.want != codes.DeadlineExceeded {
			t.Errorf("ToStatus(%v) = %v %q, want %v", tc.err, st.Code(), st.Message(), tc.want)
		}
	}
	st := status.Convert(service.ToStatus("finance", service.Prefix("budget.", &service.FieldError{Field: "line_items[0].amount", Reason: "-1 is negative"})))
	br, ok := st.Details()[0].(*errdetails.BadRequest)
	if !ok || br.GetFieldViolations()[0].GetField() != "budget.line_items[0].amount" {
		t.Errorf("details %v, want a BadRequest naming budget.line_items[0].amount", st.Details())
	}
	if service.ToStatus("x", nil) != nil {
		t.Error("ToStatus(nil) is not nil")
	}
}

func TestBatchIDs(t *testing.T) {
	got, err := service.BatchIDs([]string{"b", "a", "b", "c", "a"})
	if err != nil || !slices.Equal(got, []string{"b", "a", "c"}) {
		t.Errorf("BatchIDs = %v, %v; want b a c", got, err)
	}
	for _, ids := range [][]string{
		make([]string, service.MaxBatchGet+1),
		{"a", ""},
		{"a b"},
		{strings.Repeat("x", service.MaxIDLen+1)},
		{"\xff"},
	} {
		if _, err := service.BatchIDs(ids); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("BatchIDs(%.20q) = %v, want ErrInvalid", ids, err)
		}
	}
}

func TestExpectedVersion(t *testing.T) {
	zero, five := int64(0), int64(5)
	if v, err := service.ExpectedVersion(nil); v != 0 || err != nil {
		t.Errorf("unset = %d, %v", v, err)
	}
	if v, err := service.ExpectedVersion(&five); v != 5 || err != nil {
		t.Errorf("5 = %d, %v", v, err)
	}
	if _, err := service.ExpectedVersion(&zero); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("0 = %v, want ErrInvalid", err)
	}
}
