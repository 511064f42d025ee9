// Command pulumi-resource-random is this repo's own minimal Pulumi resource provider for the
// random package (see provider.go for what it implements).
package main

import (
	"fmt"
	"os"

	"github.com/ai-trading/pluginkit"
)

func main() {
	if err := pluginkit.Serve(newProvider()); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-random: %v\n", err)
		os.Exit(1)
	}
}
