// Command pulumi-resource-docker is this repo's own minimal Pulumi resource provider for the
// docker package (see provider.go for what it implements).
package main

import (
	"fmt"
	"os"

	"github.com/ai-trading/pluginkit"
)

func main() {
	eng, err := newEngine()
	if err == nil {
		err = pluginkit.Serve(newProvider(eng))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-docker: %v\n", err)
		os.Exit(1)
	}
}
