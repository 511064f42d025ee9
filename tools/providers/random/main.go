// Command pulumi-resource-random is this repo's own minimal Pulumi resource provider for the
// random package (see provider.go for what it implements).
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := serve(&randomProvider{}); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-random: %v\n", err)
		os.Exit(1)
	}
}
