package titles_test

import (
	"context"
	"fmt"
	"net"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/titles"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// printPublisher stands in for the producer SDK: it prints each change
// event instead of sending it to Kafka.
var printPublisher = titles.PublisherFunc(func(_ context.Context, entityType, id string, op schema.Op, seq int64) error {
	fmt.Printf("event: %s %s seq=%d\n", op, entityType, seq)
	return nil
})

func ExampleNewServer() {
	ctx := context.Background()
	srv := titles.NewServer(printPublisher)

	created, err := srv.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Id: "tt-1", Name: "The Long Night", Kind: titles.KindFeature, Status: titles.StatusDevelopment,
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created", created.GetTitle().GetId(), "version", created.GetTitle().GetVersion())

	updated, err := srv.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{
		Title: &titlesv1.Title{
			Id: "tt-1", Name: "The Long Night", Kind: titles.KindFeature,
			Status: titles.StatusProduction, ReleaseDate: "2027-07-01",
		},
		ExpectedVersion: &created.Title.Version,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("updated to version", updated.GetTitle().GetVersion())

	_, err = srv.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{
		Title:           updated.GetTitle(),
		ExpectedVersion: &created.Title.Version, // stale
	})
	fmt.Println(err)
	// Output:
	// event: CREATE title seq=1
	// created tt-1 version 1
	// event: UPDATE title seq=2
	// updated to version 2
	// rpc error: code = FailedPrecondition desc = titles: version mismatch: title tt-1 is at version 2, expected 1
}

func ExampleServe() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	served := make(chan error, 1)
	go func() { served <- titles.Serve(ctx, lis, titles.NewServer(printPublisher)) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	client := titlesv1.NewTitlesClient(conn)
	created, err := client.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "Harbour Lights", Kind: titles.KindSeries, Status: titles.StatusPost,
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	batch, err := client.BatchGetTitles(ctx, &titlesv1.BatchGetTitlesRequest{
		Ids: []string{created.GetTitle().GetId(), "no-such-title"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("found:", batch.GetTitles()[0].GetName(), "missing:", batch.GetMissingIds())

	conn.Close()
	stop()
	fmt.Println("serve:", <-served)
	// Output:
	// event: CREATE title seq=1
	// found: Harbour Lights missing: [no-such-title]
	// serve: <nil>
}
