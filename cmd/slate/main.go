// Command slate is the one binary of the slate toolkit: `slate up` runs the
// whole system on embedded defaults, `slate registry` serves the schema
// registry. Logic lives in the packages; this is flags and wiring.
package main

import (
	"os"

	// The studio's derivers, which pipelines name: studio.cashflow.
	_ "github.com/slatehq/slate/services/finance"
)

func main() { os.Exit(run(os.Args[1:])) }
