// Package financev1 is the Go code generated from finance.proto: the Budget
// and Rate messages, the request and response messages, and the Finance
// gRPC client and server interfaces. The service itself is implemented by
// github.com/slatehq/slate/services/finance; pipelines use
// [NewFinanceClient], BatchGetBudgets to look up the current state of
// budgets named by ID-only change events, and ListRates to read the
// exchange rates.
//
// Do not edit the .pb.go files; edit finance.proto and run go generate ./proto.
package financev1
