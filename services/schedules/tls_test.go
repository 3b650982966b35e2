package schedules_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	"github.com/slatehq/slate/services/internal/servicetest"
	"github.com/slatehq/slate/services/schedules"
	"google.golang.org/grpc"
)

// The service over mTLS answers a client with a certificate and refuses
// plaintext clients and TLS clients without one.
func TestServeTLS(t *testing.T) {
	srv := schedules.NewServer(&servicetest.Recorder{}, openStore(t, filepath.Join(t.TempDir(), "s.db")))
	servicetest.CheckMTLS(t, servicetest.TLSFuncs{Server: schedules.ServerTLS, Client: schedules.ClientTLS},
		func(ctx context.Context, lis net.Listener, c *tls.Config) error {
			return schedules.Serve(ctx, lis, srv, schedules.WithTLS(c), schedules.WithGracePeriod(time.Second))
		},
		func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := schedulesv1.NewSchedulesClient(conn).PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: schedule("t1")})
			return err
		})
}

func TestServeRefusesPlaintextOnNetwork(t *testing.T) {
	lis, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := schedules.NewServer(&servicetest.Recorder{}, openStore(t, filepath.Join(t.TempDir(), "s.db")))
	if err := schedules.Serve(context.Background(), lis, srv); !errors.Is(err, schedules.ErrInsecureListen) {
		t.Fatalf("Serve on %s without TLS = %v, want ErrInsecureListen", lis.Addr(), err)
	}
}
