package finance_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	financev1 "github.com/slatehq/slate/proto/finance/v1"
	"github.com/slatehq/slate/services/finance"
	"github.com/slatehq/slate/services/internal/servicetest"
	"google.golang.org/grpc"
)

// The service over mTLS answers a client with a certificate and refuses
// plaintext clients and TLS clients without one.
func TestServeTLS(t *testing.T) {
	srv := finance.NewServer(&servicetest.Recorder{}, openBolt(t, filepath.Join(t.TempDir(), "f.db")))
	servicetest.CheckMTLS(t, servicetest.TLSFuncs{Server: finance.ServerTLS, Client: finance.ClientTLS},
		func(ctx context.Context, lis net.Listener, c *tls.Config) error {
			return finance.Serve(ctx, lis, srv, finance.WithTLS(c), finance.WithGracePeriod(time.Second))
		},
		func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := financev1.NewFinanceClient(conn).PutBudget(ctx, &financev1.PutBudgetRequest{Budget: pbBudget("t1")})
			return err
		})
}

func TestServeRefusesPlaintextOnNetwork(t *testing.T) {
	lis, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := finance.NewServer(&servicetest.Recorder{}, openBolt(t, filepath.Join(t.TempDir(), "f.db")))
	if err := finance.Serve(context.Background(), lis, srv); !errors.Is(err, finance.ErrInsecureListen) {
		t.Fatalf("Serve on %s without TLS = %v, want ErrInsecureListen", lis.Addr(), err)
	}
}
