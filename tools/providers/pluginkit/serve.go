package pluginkit

// Minimal plugin entry point. The SDK's provider.Main lives in pkg/v3 since the 3.1xx releases
// (sdk/v3 v3.248.0 has no go/common/resource/provider), and pkg/v3 drags in the whole CLI's
// dependency graph; this is the same protocol in a few lines on top of sdk/v3's rpcutil:
// serve gRPC on a free port, print the port, watch the engine's health endpoint, stop on SIGINT.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

func Serve(prov pulumirpc.ResourceProviderServer) error {
	flag.String("tracing", "", "ignored (Zipkin tracing endpoint)")
	printSchema := flag.Bool("schema", false, "print the schema (indented JSON, as tools/providers/<name>/schema.json) and exit")
	flag.Parse()
	if *printSchema {
		resp, err := prov.GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
		if err != nil {
			return err
		}
		out, err := IndentSchema(resp.GetSchema())
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(out)
		return err
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if args := flag.Args(); len(args) >= 1 {
		var hcCancel context.CancelFunc
		ctx, hcCancel = context.WithCancel(ctx)
		defer hcCancel()
		if err := rpcutil.Healthcheck(ctx, args[0], 5*time.Minute, hcCancel); err != nil {
			return fmt.Errorf("could not start health check of host RPC %s: %w", args[0], err)
		}
	}
	cancelCh := make(chan bool)
	go func() {
		<-ctx.Done()
		close(cancelCh)
	}()
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancelCh,
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(s, prov)
			return nil
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("%d\n", handle.Port)
	return <-handle.Done
}

// IndentSchema is the committed form of a schema (tools/providers/<name>/schema.json, which the
// TypeScript tests read to check the program's inputs): two-space indented, newline-terminated.
func IndentSchema(schema string) ([]byte, error) {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(schema), "", "  "); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}
